"""The ``wirenews`` command.

Example:
    wirenews run --source seeds/ --output out/ [--runner ... any Beam flag]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]

LOGGER = logging.getLogger("wirenews")

# Import-time warnings of Beam's optional Google Cloud clients, irrelevant here.
_IMPORT_NOISE = ("apitools not found",)


class _DropImportNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_IMPORT_NOISE)


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_DropImportNoise())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    for name in ("wirenews", "pipeline", "transforms"):
        logging.getLogger(name).setLevel(logging.INFO)
    if verbose:
        logging.getLogger().setLevel(logging.INFO)


def _parser() -> argparse.ArgumentParser:
    from pipeline.options import WirenewsOptions  # noqa: PLC0415 - after logging is set up

    parser = argparse.ArgumentParser(
        prog="wirenews", description="Wire news ingestion: clean, deduplicate, enrich, write Avro."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Show Beam's own logs.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="Run the pipeline.",
        description="Run the pipeline. Any Beam pipeline flag (--runner, "
        "--direct_num_workers, ...) passes through to Beam.",
    )
    WirenewsOptions._add_argparse_args(run)  # noqa: SLF001 - the same flags Beam parses
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wirenews`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    _configure_logging(verbose)
    parser = _parser()
    args, _beam_flags = parser.parse_known_args(argv)
    if args.command == "run":
        return _run_command(parser, argv[argv.index("run") + 1 :])
    return 2


def _run_command(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    from pipeline.job import run  # noqa: PLC0415 - Beam is slow to import
    from transforms.errors import WirenewsError  # noqa: PLC0415

    try:
        report = run(argv)
    except WirenewsError as exc:
        parser.exit(2, f"wirenews run: {exc}\n")
    print(report.summary())  # noqa: T201 - the command's output
    return 0 if report.state == "DONE" else 1


if __name__ == "__main__":
    sys.exit(main())
