"""The summary line a run ends with, and how a run takes its stop signals."""

import dataclasses
import signal
import threading

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

from pipeline.job import JobReport, _asked_to_stop, _noting_interrupts, leaves_streams_running


def _report(*, counted: bool = True, streaming: bool = True) -> JobReport:
    return JobReport(
        state=PipelineState.CANCELLED,
        streaming=streaming,
        read=15,
        articles=13,
        duplicates=2,
        dead_letters=0,
        elapsed_seconds=5.0,
        result=None,  # type: ignore[arg-type] - the summary never reads it
        held_fingerprints=3,
        counted=counted,
    )


def test_a_stream_says_what_it_read_and_the_dedup_state_it_held() -> None:
    assert _report().summary() == (
        "CANCELLED: read 15 records: 13 articles, 2 duplicates, 0 dead letters, in 5.0 s; "
        "dedup state held: 3 fingerprints"
    )


def test_a_stream_stopped_with_records_in_flight_says_they_will_be_read_again() -> None:
    summary = dataclasses.replace(_report(), read=400).summary()
    assert "in 5.0 s, 385 not written yet (uncommitted: a restart with the same --group" in summary


def test_a_batch_rate_is_of_every_record_read() -> None:
    """15 in 5.0 s, duplicates and dead letters too."""
    assert _report(streaming=False).summary().endswith("in 5.0 s (3.0 records/s)")


def test_copies_kept_among_the_articles_are_not_counted_twice() -> None:
    """``--duplicates keep``: read = articles + duplicates + dead letters still holds."""
    report = dataclasses.replace(_report(streaming=False), articles=15, duplicates=0, kept_copies=2)
    assert report.summary().startswith(
        "CANCELLED: read 15 records: 15 articles (2 of them copies, kept), 0 duplicates, "
    )


def test_a_stream_on_dataflow_is_left_running_and_the_summary_says_how_to_stop_it() -> None:
    """Its Flex Template launcher must end once the job is submitted; Dataflow runs it."""
    for runner in ("DataflowRunner", "dataflow", "apache_beam.runners.DataflowRunner"):
        assert leaves_streams_running(PipelineOptions([f"--runner={runner}"]))
    for runner in ("PrismRunner", "FlinkRunner", "PortableRunner", "DirectRunner"):
        assert not leaves_streams_running(PipelineOptions([f"--runner={runner}"]))
    left = dataclasses.replace(
        _report(counted=False), state="RUNNING", detached="the stream runs on Dataflow as job j"
    )
    assert left.succeeded
    assert left.summary() == "RUNNING: the stream runs on Dataflow as job j"


def test_without_counters_from_the_runner_it_says_so_rather_than_zero() -> None:
    summary = _report(counted=False).summary()
    assert summary == "CANCELLED: the runner reported no counters, in 5.0 s"
    assert _report(counted=False).succeeded


def test_a_first_stop_signal_asks_and_a_second_ends_the_runner_at_once() -> None:
    stop, ended = threading.Event(), []
    _asked_to_stop(stop, lambda: ended.append(True), signal.SIGINT, None)
    assert stop.is_set()
    assert ended == [], "the first signal lets the job be cancelled"
    with pytest.raises(KeyboardInterrupt):
        _asked_to_stop(stop, lambda: ended.append(True), signal.SIGINT, None)
    assert ended == [True]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_batch_job_notes_a_stop_signal_and_still_stops(
    monkeypatch: pytest.MonkeyPatch, stop: signal.Signals
) -> None:
    """Noted, so that a failure Beam reports after it is told as a stop."""
    monkeypatch.setattr("pipeline.job._expect_shutdown_noise", lambda: None)  # keeps pytest's
    noted = threading.Event()
    previous = signal.signal(stop, signal.default_int_handler)  # a handler, as in a terminal
    try:
        with pytest.raises(KeyboardInterrupt), _noting_interrupts(noted):
            signal.raise_signal(stop)
        assert signal.getsignal(stop) is signal.default_int_handler  # put back
    finally:
        signal.signal(stop, previous)
    assert noted.is_set()


def test_a_job_started_with_ctrl_c_ignored_keeps_ignoring_it() -> None:
    noted = threading.Event()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _noting_interrupts(noted):
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not noted.is_set()
