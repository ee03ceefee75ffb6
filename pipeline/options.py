"""The pipeline's options, a ``PipelineOptions`` subclass so Beam's launchers see them.

Each flag has a hyphenated spelling for people (``--max-record-bytes``) and an
underscored one for launchers that expect Beam's style (``--max_record_bytes``).

Example:
    options = PipelineOptions(argv).view_as(WirenewsOptions)
    options.source, options.output
"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, StandardOptions

from transforms.errors import WirenewsError
from transforms.nlp import DEFAULT_MODEL
from transforms.parse import DEFAULT_MAX_RECORD_BYTES

__all__ = ["WirenewsOptions", "check_flags", "parse_options", "runner_kind"]

LOGGER = logging.getLogger(__name__)
# Runners that take no options but Beam's Python SDK's: any other flag is a mistake there.
_LOCAL_RUNNERS = frozenset({"direct", "prism"})
# A flag's name shorter than this is not looked for inside known flags' names.
_SHORTEST_PART = 4


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        message = f"expected a whole number, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value <= 0:
        message = f"must be a positive integer, got {text}"
        raise argparse.ArgumentTypeError(message)
    return value


def _non_negative_int(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        message = f"must be 0 or more, got {text}"
        raise argparse.ArgumentTypeError(message)
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration_seconds(text: str) -> int:
    """``7d``, ``12h``, ``90m``, ``45s`` or plain seconds."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        seconds = int(number) * _UNITS[unit]
    except ValueError:
        message = f"expected a duration such as 7d, 12h, 90m or 3600, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if seconds <= 0:
        message = f"must be positive, got {text!r}"
        raise argparse.ArgumentTypeError(message)
    return seconds


class WirenewsOptions(PipelineOptions):
    """Where articles come from and where records go."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        def flag(name: str, **kwargs: Any) -> None:
            dest = name.replace("-", "_")
            spellings = [f"--{name}"] + ([f"--{dest}"] if dest != name else [])
            parser.add_argument(*spellings, dest=dest, **kwargs)

        flag(
            "source",
            help="Articles to read: a folder (read recursively), a file or a glob of "
            ".txt/.json/.jsonl files, optionally gzipped; or a Kafka topic, "
            "kafka://HOST:PORT/TOPIC (a stream, unless --until-end). Required.",
        )
        flag(
            "output",
            help="Where articles go: a folder (articles-*.avro files) or "
            "kafka://HOST:PORT/TOPIC (one Avro message per article). Required.",
        )
        flag(
            "dead-letters",
            help="Where dead letters go, if not beside the articles (dead_letters-*.avro "
            "files in the output folder, or the topic <topic>-dead-letters).",
        )
        flag(
            "schema-registry",
            metavar="URL",
            help="Confluent-compatible schema registry for Kafka output: values are "
            "framed with the schema id and the schema registered as <topic>-value.",
        )
        flag(
            "group",
            help="Kafka consumer group: offsets are committed to it once the records "
            "below them are in an output.",
        )
        flag(
            "start",
            default=None,
            help="Where a Kafka read starts: earliest, latest, committed (the group's "
            "offsets), or an ISO 8601 time. Default: committed with --group, else earliest.",
        )
        flag(
            "until-end",
            action="store_true",
            default=False,
            help="Bounded Kafka read: stop at the end offsets present at launch.",
        )
        flag(
            "window",
            type=_positive_int,
            default=60,
            help="Streaming runs write a file per window of this many seconds "
            "(default: %(default)s).",
        )
        flag(
            "flink-rest",
            default=None,
            metavar="URL",
            help="Flink's REST API (http://JOBMANAGER:8081) for a stream submitted with "
            "--runner=PortableRunner: stopping it cancels its Flink job there too, which "
            "Beam's job server leaves running. --runner=FlinkRunner --flink_master=HOST:PORT "
            "needs none.",
        )
        flag(
            "kafka-config",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A Kafka client setting, e.g. security_protocol=SASL_SSL or the Java client's "
            "security.protocol=SASL_SSL (repeatable).",
        )
        flag(
            "kafka-password-env",
            metavar="VAR",
            help="Environment variable holding the SASL password (never put it in a flag).",
        )
        flag(
            "dedup",
            choices=("on", "off"),
            default="on",
            help="off: keep every article as it comes, without looking for copies (articles "
            "then carry no dedup field) (default: on).",
        )
        flag(
            "duplicates",
            choices=("drop", "keep"),
            default="drop",
            help="drop: duplicates go to the duplicates output as small records (default); "
            "keep: they stay among the articles, flagged in their dedup field.",
        )
        flag(
            "dedup-horizon",
            type=_duration_seconds,
            default=7 * 24 * 3600,
            metavar="DURATION",
            help="Streaming dedup remembers articles this long in event time, e.g. 7d, 12h, "
            "90m, 3600 (seconds); memory stays bounded (default: 7d).",
        )
        flag(
            "spacy-model",
            default=DEFAULT_MODEL,
            metavar="NAME",
            help="Installed spaCy pipeline for entities (default: %(default)s, the PyPI "
            "copy of en_core_web_sm 3.8.0).",
        )
        flag(
            "nlp-processes",
            type=_non_negative_int,
            default=None,
            metavar="N",
            help="Run spaCy in N helper processes beside each SDK worker (0: in the worker). "
            "Default: one per core but one where every step shares one Python process (any "
            "job on Prism, an embedded Flink), else 0.",
        )
        flag(
            "max-record-bytes",
            type=_positive_int,
            default=DEFAULT_MAX_RECORD_BYTES,
            help="Larger input records are dead-lettered unread (default: %(default)s, 10 MiB).",
        )


def parse_options(argv: Sequence[str] | None = None) -> PipelineOptions:
    """Beam's options from flags (``sys.argv`` by default), our ``--output`` kept ours.

    Beam parses each options view on its own and lets argparse expand
    abbreviations, so in a view without ``--output`` our flag would also set
    ``--output_executable_path``, and a portable runner (Prism, Flink) would
    write a jar there instead of running the job.
    """
    flags = list(argv) if argv is not None else sys.argv[1:]
    options = PipelineOptions(flags)
    if not any(flag.startswith("--output_executable_path") for flag in flags):
        options.view_as(PortableOptions).output_executable_path = None
    return options


def runner_kind(options: PipelineOptions) -> str:
    """``--runner`` as a short lower-case name: ``flink``, ``prism``, ``direct`` (unset)...

    Beam takes ``FlinkRunner``, ``flink``, ``flinkrunner`` and the class's dotted path
    alike for the same runner, so the choices made here must too. A runner class of
    the user's own (a dotted path outside Beam) keeps its whole name: it is Beam's to load.
    """
    runner = options.view_as(StandardOptions).runner or "direct"
    if "." in runner and not runner.startswith("apache_beam."):
        return runner
    name = runner.rsplit(".", 1)[-1].lower()
    return name.removesuffix("runner") or name


class _FlagParser(argparse.ArgumentParser):
    """Every flag some options class declares, written out in full; errors raise."""

    def __init__(self) -> None:
        super().__init__(allow_abbrev=False, add_help=False)
        # The classes Beam itself parses flags with, each once (as in get_all_options).
        for options_class in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
            options_class._add_argparse_args(self)  # noqa: SLF001 - Beam's own hook

    def add_value_provider_argument(self, *args: Any, **kwargs: Any) -> None:
        """Templated flags (Dataflow's) are plain flags here: only their names matter."""
        self.add_argument(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise WirenewsError(message)

    def flag_names(self) -> list[str]:
        """Each long flag's spelling, for suggestions."""
        return [name for action in self._actions for name in action.option_strings]


def check_flags(flags: Sequence[str], options: PipelineOptions) -> None:
    """Refuse a flag that neither wirenews nor Beam's Python SDK declares, naming the one meant.

    Beam drops such a flag with a warning, and also takes a flag's abbreviation for
    it, so ``--ouptut y`` or ``--duplicate keep`` ran the job on defaults. A remote
    runner's own flags (Flink's ``--checkpointing_interval``) are passed on to it,
    with a warning; the local runners take none.

    Raises:
        WirenewsError: a mistaken flag, with the likely one.
    """
    parser = _FlagParser()
    _, unknown = parser.parse_known_args(list(flags))
    names = parser.flag_names()
    local = runner_kind(options) in _LOCAL_RUNNERS
    for flag in (item for item in unknown if item.startswith("-")):
        name = flag.split("=", 1)[0]
        word = name.lstrip("-")
        meant = (
            difflib.get_close_matches(name, names, n=1, cutoff=0.75)
            or [known for known in names if known.startswith(name)]  # --nlp, as Beam would take
            or [known for known in names if len(word) >= _SHORTEST_PART and word in known]
        )
        if meant:
            message = f"unknown flag {name}: did you mean {meant[0]}?"
            raise WirenewsError(message)
        if local:
            message = f"unknown flag {name} (wirenews run --help lists the job's flags)"
            raise WirenewsError(message)
        LOGGER.warning("passing %s on to the runner: Beam's Python SDK does not know it", name)
