"""The ``wirenews`` command.

Example:
    wirenews run --source seeds/ --output out/ [--runner ... any Beam flag]
    wirenews feed --bootstrap 127.0.0.1:9092 --topic wire --partitions 3 seeds/
    wirenews read out/ --format table
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["main"]

LOGGER = logging.getLogger("wirenews")

# Warnings that say nothing to our users: Beam's optional Google Cloud clients at import,
# what every worker process of a multi-process batch run says as it starts, and Beam's
# guess that a DoFn returning nothing forgot to (streaming dedup's steps only keep state).
_NOISE = (
    "apitools not found",
    "No semi_persistent_directory found",
    "Discarding unparseable args",
    "No iterator is returned by the process method",
)


_COMMANDS = ("run", "feed", "read")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in _NOISE)


class _WithoutTracebacks(logging.Formatter):
    """Without -v a log line says what went wrong; the traceback of where is for -v."""

    def formatException(self, ei: Any) -> str:
        return ""


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter if verbose else _WithoutTracebacks
    handler.setFormatter(formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_DropNoise())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    for name in ("wirenews", "pipeline", "transforms"):
        logging.getLogger(name).setLevel(logging.INFO)
    # kafka-python logs every refused connection; our own messages say what matters.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    if verbose:
        logging.getLogger().setLevel(logging.INFO)


def _parser(command: str | None) -> argparse.ArgumentParser:
    """The command line; ``run``'s options only for ``run``: they import Beam and spaCy (~2 s)."""
    parser = argparse.ArgumentParser(
        prog="wirenews", description="Wire news ingestion: clean, deduplicate, enrich, write Avro."
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="Show tracebacks and Beam's own logs."
    )
    parser.add_argument("--version", action="version", version=f"wirenews {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="Run the pipeline.",
        description="Run the pipeline. Any Beam pipeline flag (--runner, "
        "--direct_num_workers, ...) passes through to Beam.",
    )
    if command == "run":
        from pipeline.options import WirenewsOptions  # noqa: PLC0415 - after logging is set up

        WirenewsOptions._add_argparse_args(run)  # noqa: SLF001 - the same flags Beam parses
    feed = commands.add_parser(
        "feed",
        help="Publish article files onto a Kafka topic.",
        description="Publish articles (.txt/.json/.jsonl, gzipped or not; folders, globs, "
        "or - for JSON Lines on stdin) as one message each: key = id, value = JSON.",
    )
    feed.add_argument(
        "paths", nargs="+", metavar="PATH", help="Files, folders (read recursively), globs, or -."
    )
    feed.add_argument(
        "--bootstrap", required=True, metavar="HOST:PORT[,HOST:PORT]", help="Kafka's brokers."
    )
    feed.add_argument("--topic", required=True, help="The topic to publish to.")
    feed.add_argument(
        "--partitions", type=int, metavar="N", help="Create the topic with N partitions if absent."
    )
    _kafka_client_flags(feed)
    read = commands.add_parser(
        "read",
        help="Print what the pipeline wrote.",
        description="Print records from Avro files (a file, folder or glob) or a Kafka topic "
        "(kafka://HOST:PORT/TOPIC), as JSON Lines (times in ISO 8601, bytes in base64) "
        "or a table.",
    )
    read.add_argument("source", metavar="PATH|kafka://HOST:PORT/TOPIC")
    read.add_argument(
        "--format",
        choices=("jsonl", "table"),
        default="jsonl",
        help="One JSON object a line (default), or a table of the main fields.",
    )
    shown = read.add_mutually_exclusive_group()
    shown.add_argument("--schema", action="store_true", help="Print the writer schema(s).")
    shown.add_argument("--count", action="store_true", help="Print how many records there are.")
    read.add_argument("--follow", action="store_true", help="Keep reading a topic as it grows.")
    read.add_argument(
        "--schema-registry",
        metavar="URL",
        help="The registry a topic's Confluent-framed messages name their schemas in.",
    )
    _kafka_client_flags(read)
    return parser


def _kafka_client_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--kafka-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A Kafka client setting, e.g. security.protocol=SASL_SSL (repeatable).",
    )
    command.add_argument(
        "--kafka-password-env",
        metavar="VAR",
        help="Environment variable holding the SASL password (never put it in a flag).",
    )


def _version() -> str:
    try:
        return importlib.metadata.version("wirenews")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wirenews`` console script; returns the exit status."""
    given = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in given or "--verbose" in given
    argv = [arg for arg in given if arg not in ("-v", "--verbose")]  # anywhere on the line
    if not argv:
        _parser(None).print_help()
        return 2
    _configure_logging(verbose)
    parser = _parser(next((arg for arg in argv if arg in _COMMANDS), None))
    args, _beam_flags = parser.parse_known_args(argv)
    if args.command == "run":
        return _run_command(parser, argv[argv.index("run") + 1 :], verbose=verbose)
    if args.command == "read":
        return _read_command(parser.parse_args(argv))
    return _feed_command(parser.parse_args(argv))


def _run_command(parser: argparse.ArgumentParser, argv: list[str], *, verbose: bool) -> int:
    from pipeline.job import JobFailed, run  # noqa: PLC0415 - Beam is slow to import
    from transforms.errors import WirenewsError  # noqa: PLC0415

    try:
        report = run(argv)
    except JobFailed as exc:
        if verbose:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        parser.exit(1, f"wirenews run: {exc}\n" + ("" if verbose else "(-v shows where)\n"))
    except WirenewsError as exc:
        parser.exit(2, f"wirenews run: {exc}\n")
    except KeyboardInterrupt:
        parser.exit(130, "wirenews run: stopped at once, without the job's counters\n")
    print(report.summary())  # noqa: T201 - the command's output
    return 0 if report.succeeded else 1


def _feed_command(args: argparse.Namespace) -> int:
    from pipeline.feed import StopRequests, feed  # noqa: PLC0415
    from pipeline.io.kafka_client import KafkaSettings, KafkaUnavailable  # noqa: PLC0415
    from pipeline.signals import handling  # noqa: PLC0415
    from transforms.errors import WirenewsError  # noqa: PLC0415

    stop_requests = StopRequests()
    try:
        settings = KafkaSettings.from_flags(
            args.bootstrap, args.kafka_config, args.kafka_password_env
        )
        with handling(stop_requests, (signal.SIGINT, signal.SIGTERM)):
            report = feed(
                settings,
                args.topic,
                args.paths,
                partitions=args.partitions,
                on_progress=lambda r: LOGGER.info("%s so far", r.summary()),
                stop_requests=stop_requests,
            )
    except KafkaUnavailable as exc:
        print(f"wirenews feed: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except WirenewsError as exc:
        print(f"wirenews feed: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:  # asked again while the last sends went out
        message = "wirenews feed: stopped at once; sends not yet acknowledged may be lost"
        print(message, file=sys.stderr)  # noqa: T201
        return 130
    print(report.summary())  # noqa: T201 - the command's output
    if report.failed or report.skipped:  # not everything it was given reached the topic
        return 1
    return 130 if report.stopped else 0


def _print_count(records: Iterator[object]) -> None:
    """How many records there are; those of readable files, if some are not."""
    from pipeline.read import UnreadableFiles  # noqa: PLC0415

    counted = 0
    try:
        for _ in records:
            counted += 1
    except UnreadableFiles:
        print(counted)  # noqa: T201
        raise
    print(counted)  # noqa: T201


def _read_command(args: argparse.Namespace) -> int:
    from pipeline.read import (  # noqa: PLC0415
        read_records,
        table_lines,
        to_json_line,
        writer_schemas,
    )
    from transforms.errors import WirenewsError  # noqa: PLC0415

    kafka = {
        "registry_url": args.schema_registry,
        "kafka_config": args.kafka_config,
        "password_env": args.kafka_password_env,
    }
    try:
        records = read_records(args.source, follow=args.follow, **kafka)
        if args.count:
            _print_count(records)
        elif args.schema:
            for schema in writer_schemas(args.source, **kafka):
                print(json.dumps(schema, indent=2))  # noqa: T201
        else:
            lines = table_lines(records) if args.format == "table" else map(to_json_line, records)
            for line in lines:
                print(line, flush=args.follow)  # noqa: T201
    except WirenewsError as exc:
        print(f"wirenews read: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `wirenews read ... | head` closed the pipe: fine
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
