"""Running the job: the one entry point for the CLI and the tests.

Example:
    report = run(["--source", "seeds/", "--output", "out/"])
    print(report.summary())
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import apache_beam as beam
import grpc
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
)
from apache_beam.runners.runner import PipelineResult, PipelineRunner, PipelineState

from pipeline.flink import cancel_on_cluster, flink_jobs, flink_rest_url, name_job
from pipeline.graph import (
    OUTPUT_PREFIXES,
    adds_to_output,
    build,
    dead_letter_target,
    is_streaming,
)
from pipeline.io.avro import AVRO_SUFFIX
from pipeline.io.kafka_client import is_kafka_url
from pipeline.io.paths import is_local
from pipeline.job_server import stop_job_servers
from pipeline.options import WirenewsOptions, check_flags, parse_options, runner_kind
from pipeline.runner import choose_runner, offload_nlp, use_every_core
from pipeline.signals import handling
from transforms.dedup import FINGERPRINTS
from transforms.errors import WirenewsError
from transforms.metrics import NAMESPACE

__all__ = ["JobFailed", "JobReport", "job_counters", "leaves_streams_running", "run"]

LOGGER = logging.getLogger(__name__)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class JobReport:
    """What a finished run did, from the pipeline's own counters."""

    state: str
    streaming: bool
    read: int
    articles: int
    duplicates: int
    dead_letters: int
    elapsed_seconds: float
    result: PipelineResult
    # A stream's dedup state when it stopped: the fingerprints not yet expired.
    held_fingerprints: int = 0
    # With --duplicates keep: copies written among the articles, flagged (counted in articles).
    kept_copies: int = 0
    # False when the runner kept its counters to itself: Flink reports none for a cancelled stream.
    counted: bool = True
    # A stream left running on its own runner (Dataflow): where it is and how to stop it.
    detached: str = ""

    @property
    def succeeded(self) -> bool:
        """Done, or (streaming) stopped on request."""
        return (
            self.state == PipelineState.DONE
            or (self.streaming and self.state == PipelineState.CANCELLED)
            or bool(self.detached)
        )

    def summary(self) -> str:
        """One line for people: counts, time and rate."""
        if self.detached:
            return f"{self.state}: {self.detached}"
        if not self.counted:
            return f"{self.state}: the runner reported no counters, in {self.elapsed_seconds:.1f} s"
        kept = f" ({self.kept_copies:,} of them copies, kept)" if self.kept_copies else ""
        line = (
            f"{self.state}: read {self.read:,} records: {self.articles:,} articles{kept}, "
            f"{self.duplicates:,} duplicates, {self.dead_letters:,} dead letters, "
            f"in {self.elapsed_seconds:.1f} s"
        )
        if not self.streaming:  # a stream's time is mostly waiting: a rate would say nothing
            rate = self.read / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0
            return f"{line} ({rate:,.1f} records/s)"
        unwritten = self.read - self.articles - self.duplicates - self.dead_letters
        if unwritten > 0:
            line += (
                f", {unwritten:,} not written yet (uncommitted: a restart with the same --group "
                "reads them again)"
            )
        return f"{line}; dedup state held: {self.held_fingerprints:,} fingerprints"


def run(argv: Sequence[str] | None = None) -> JobReport:
    """Build the job from command-line flags, run it to the end and report.

    Raises:
        WirenewsError: the options are incomplete or the source is unreadable.
    """
    options = parse_options(argv)
    check_flags(sys.argv[1:] if argv is None else argv, options)
    wirenews = options.view_as(WirenewsOptions)
    _check_places(wirenews)
    _check_kafka_flags(wirenews)
    streaming = is_streaming(options)
    options.view_as(StandardOptions).streaming = streaming
    started = time.monotonic()
    stop, interrupted = threading.Event(), threading.Event()
    # A stream asked to stop while it starts stops once started, rather than dying by the
    # signal and leaving Prism running without it.
    with _stopping_on_signals(stop) if streaming else _noting_interrupts(interrupted):
        cluster = flink_rest_url(options) if streaming else None
        job_name = name_job(options) if cluster else ""
        earlier = _jobs_named(cluster, job_name) if cluster else set()
        runner = choose_runner(options)
        offload_nlp(runner, options)
        pipeline = _new_pipeline(runner, options)
        outputs = build(pipeline, options)
        use_every_core(runner, options, outputs.input_bytes)
        if not streaming and not adds_to_output(wirenews):  # the job is sound: make room for it
            for folder in {wirenews.output, dead_letter_target(wirenews)}:
                if not is_kafka_url(folder):
                    _remove_earlier_output(folder)
        try:
            result = pipeline.run()
            if streaming and leaves_streams_running(options):
                return _left_running(result, options, time.monotonic() - started)
            state = _wait(result, stop) if streaming else result.wait_until_finish()
        except WirenewsError:
            raise
        except Exception as exc:
            if interrupted.is_set():  # Ctrl-C as a worker met it: Beam reports it as a failure
                raise KeyboardInterrupt from exc
            raise JobFailed(_why_it_failed(exc, options)) from exc
        finally:
            if cluster and stop.is_set():  # also after a second Ctrl-C, or a failed cancel
                interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt)
                _cancel_on_cluster(cluster, job_name, earlier, patience=0 if interrupted else 10)
    if state == PipelineState.DONE:
        outputs.after_success()
    counters = job_counters(result)
    keep = wirenews.duplicates == "keep"
    found_copies = counters.get("dedup.duplicates", 0)
    return JobReport(
        state=str(state),
        streaming=streaming,
        read=counters.get("read.received", 0),
        articles=counters.get("write_articles.ok", 0),
        # Less those too large for their topic, which went to the dead letters.
        duplicates=0 if keep else found_copies - counters.get("write_duplicates.dead_lettered", 0),
        kept_copies=found_copies if keep else 0,
        dead_letters=counters.get("write_dead_letters.ok", 0),
        elapsed_seconds=time.monotonic() - started,
        result=result,
        held_fingerprints=counters.get(FINGERPRINTS, 0),
        # Flink reports no counters for a cancelled stream: say so rather than count zeros.
        counted=bool(counters) or state != PipelineState.CANCELLED,
    )


def leaves_streams_running(options: PipelineOptions) -> bool:
    """Whether a stream is left to run on its own once submitted, rather than waited for.

    Dataflow runs a stream by itself, and its Flex Template launcher must end once
    the job is submitted: waiting for a stop signal, the launcher would time out, or
    cancel the stream on the way.
    """
    return runner_kind(options) == "dataflow"


def _left_running(result: PipelineResult, options: PipelineOptions, seconds: float) -> JobReport:
    job_id = getattr(result, "job_id", lambda: "?")()
    region = options.view_as(GoogleCloudOptions).region
    return JobReport(
        state=str(result.state),
        streaming=True,
        read=0,
        articles=0,
        duplicates=0,
        dead_letters=0,
        elapsed_seconds=seconds,
        result=result,
        counted=False,
        detached=(
            f"the stream runs on Dataflow as job {job_id}; stop it with "
            f"`gcloud dataflow jobs drain {job_id} --region={region}`"
        ),
    )


def _jobs_named(rest_url: str, job_name: str) -> set[str]:
    """The ids of the cluster's jobs called ``job_name`` before this run (never to cancel)."""
    try:
        return {jid for jid, (name, _) in flink_jobs(rest_url).items() if name == job_name}
    except (OSError, ValueError) as exc:
        LOGGER.debug("no job list from %s before the run: %s", rest_url, exc)
        return set()


def _cancel_on_cluster(rest_url: str, job_name: str, earlier: set[str], patience: float) -> None:
    """Beam has cancelled its invocation of the stream; its job on the cluster is ended here."""
    try:
        cancelled = cancel_on_cluster(rest_url, job_name, spare=earlier, patience=patience)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        cancelled, why = [], f"{exc}"
    else:
        why = "none of that name was running"
    for jid in cancelled:
        LOGGER.info("cancelled Flink job %s (%s) at %s", jid, job_name, rest_url)
    if not cancelled:
        LOGGER.warning(
            "cancelled no Flink job %s at %s (%s): if it still runs there, cancel it there",
            job_name, rest_url, why,
        )  # fmt: skip


class JobFailed(WirenewsError):
    """The runner reports the job failed (a step raised, the engine gave up), or none took it."""


def _why_it_failed(error: Exception, options: PipelineOptions) -> str:
    """The runner's first line; for a job service that never answered, which one."""
    endpoint = options.view_as(PortableOptions).job_endpoint
    if isinstance(error, grpc.FutureTimeoutError) and endpoint:
        timeout = options.view_as(PortableOptions).job_server_timeout
        return f"no job service answered at {endpoint} within {timeout} s (--job_endpoint)"
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return f"the job failed: {lines[0]}"


def _stopping_on_signals(stop: threading.Event) -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM set ``stop`` instead of ending the process, while inside."""
    asked = functools.partial(_asked_to_stop, stop, stop_job_servers)
    return handling(asked, _STOP_SIGNALS, even_ignored=True)


def _noting_interrupts(interrupted: threading.Event) -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt, and are noted, while inside.

    A batch job's workers may meet it first, and Beam then reports a failed job.
    SIGTERM too, so that the process ends through its exit handlers, which stop a
    Prism it started (that would otherwise idle on for a minute). A signal ignored
    when the job started (SIGINT for a job started in the background) stays so.
    """

    def noted(*_: object) -> None:
        interrupted.set()
        _expect_shutdown_noise()
        raise KeyboardInterrupt

    return handling(noted, _STOP_SIGNALS)


def _asked_to_stop(stop: threading.Event, end_runners: Callable[[], None], *_: object) -> None:
    """The first signal asks the stream to stop; a second ends its runner and the run at once.

    The second is for a runner that hangs while the job is cancelled: a cancel and a
    counters query have no timeout of their own.

    Raises:
        KeyboardInterrupt: on the second signal, once the runner is ended.
    """
    if not stop.is_set():
        stop.set()
        return
    LOGGER.warning("asked again: ending the runner without waiting for the job")
    end_runners()
    raise KeyboardInterrupt


def _wait(result: PipelineResult, stop: threading.Event) -> str:
    """Wait for a streaming job to end: it ends when asked to (SIGINT or SIGTERM)."""
    LOGGER.info("streaming until stopped (Ctrl-C or SIGTERM)")
    while not stop.wait(1.0):
        if PipelineState.is_terminal(result.state):
            return result.state
    LOGGER.info("stopping: cancelling the streaming job (ask again to end it at once)")
    _expect_shutdown_noise()
    try:
        result.cancel()
    except Exception as exc:
        LOGGER.info("the runner had already stopped (%s)", type(exc).__name__)
    return PipelineState.CANCELLED


def _expect_shutdown_noise() -> None:
    """Once a job is being stopped, broken gRPC streams of Beam's workers are expected.

    Beam's worker threads log them, raise them, and print them to stderr (a bundle
    cancelled while it runs), and Prism's own log of a job stopped mid-bundle comes
    through a thread of Beam's; what this process's main thread prints still shows.
    For a process about to end: nothing undoes it.
    """
    if isinstance(sys.stderr, _MainThreadOnly):
        return
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_from_the_main_thread)
    threading.excepthook = lambda args: LOGGER.debug(
        "during shutdown: %s in %s", args.exc_type.__name__, args.thread
    )
    sys.stderr = _MainThreadOnly(sys.stderr)


def _from_the_main_thread(record: logging.LogRecord) -> bool:
    return record.thread == threading.main_thread().ident


class _MainThreadOnly:
    """A text stream that passes on only what the main thread writes."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` if the main thread sends it; swallow it otherwise."""
        if threading.current_thread() is threading.main_thread():
            return self._stream.write(text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _check_places(wirenews: WirenewsOptions) -> None:
    """Refuse a job without a source or an output, or with a file where a folder goes."""
    for name in ("source", "output"):
        if not getattr(wirenews, name):
            message = f"--{name} is required"
            raise WirenewsError(message)
    for flag, target in (("--output", wirenews.output), ("--dead-letters", wirenews.dead_letters)):
        if target and is_local(target) and os.path.isfile(target):
            message = f"{flag} {target} is a file: the job writes its files into a folder"
            raise WirenewsError(message)


def _check_kafka_flags(wirenews: WirenewsOptions) -> None:
    """Refuse flags for a Kafka source or output where there is none: they would do nothing."""
    if not is_kafka_url(wirenews.source):
        given = (
            ("--group", wirenews.group),
            ("--start", wirenews.start),
            ("--until-end", wirenews.until_end),
        )
        for flag in (flag for flag, value in given if value):
            message = f"{flag} is for a Kafka source (kafka://HOST:PORT/TOPIC)"
            raise WirenewsError(message)
    targets = (wirenews.output, wirenews.dead_letters)
    if wirenews.schema_registry and not any(map(is_kafka_url, targets)):
        message = "--schema-registry is for a Kafka output (kafka://HOST:PORT/TOPIC)"
        raise WirenewsError(message)


def _new_pipeline(runner: PipelineRunner | None, options: PipelineOptions) -> beam.Pipeline:
    """The pipeline on ``runner``, or on the one ``--runner`` names."""
    try:
        return beam.Pipeline(runner=runner, options=options)
    except ValueError as exc:  # Beam knows no runner of that name; it lists those it knows
        raise WirenewsError(str(exc)) from exc
    except ImportError as exc:
        message = f"--runner {options.view_as(StandardOptions).runner}: {exc}"
        raise WirenewsError(message) from exc


def _remove_earlier_output(output: str) -> None:
    """Delete the shards an earlier batch run left under ``output``, so shards never mix.

    Streaming files (named by window) and those of runs that add to their folder
    (named by their start) are kept.
    """
    patterns = [
        FileSystems.join(output, f"{prefix}-?????-of-?????{AVRO_SUFFIX}")
        for prefix in OUTPUT_PREFIXES
    ]
    stale = [m.path for found in FileSystems.match(patterns) for m in found.metadata_list]
    if stale:
        LOGGER.info("removing %d output files of an earlier run in %s", len(stale), output)
        FileSystems.delete(stale)


def job_counters(result: PipelineResult) -> dict[str, int]:
    """Our counters by name, summed over steps; committed values where the runner has them."""
    totals: dict[str, int] = {}
    try:
        query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    except Exception as exc:
        LOGGER.warning("the runner did not report the job's counters (%s)", type(exc).__name__)
        return totals
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return totals
