"""The streaming reader's slices against the real broker, driven as a runner would drive them."""

from collections.abc import Callable

import pytest
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Duration

from pipeline.io import kafka_read
from pipeline.io.kafka_client import KafkaSettings
from pipeline.io.kafka_read import TopicPositions, TopicStart, _ReadTopicFn, _TopicTracker
from tests.conftest import article_json

pytestmark = pytest.mark.kafka


class _RunnerView:
    """A runner's tracker view: claims reach the tracker, deferrals are kept."""

    def __init__(self, tracker: _TopicTracker) -> None:
        self.tracker = tracker
        self.deferred: list[Duration | None] = []

    def current_restriction(self) -> TopicPositions:
        return self.tracker.current_restriction()

    def try_claim(self, position: tuple[int, int]) -> bool:
        return self.tracker.try_claim(position)

    def defer_remainder(self, delay: Duration | None = None) -> None:
        self.deferred.append(delay)


def _slice(
    reader: _ReadTopicFn, start: TopicStart, positions: TopicPositions
) -> tuple[int, _RunnerView, TopicPositions]:
    """One bundle of the reader: the records it read, the view it deferred on, the residual."""
    view = _RunnerView(_TopicTracker(positions))
    outputs = list(reader.process(start, view, ManualWatermarkEstimator(MIN_TIMESTAMP)))
    read = sum(1 for output in outputs if isinstance(output, TimestampedValue))
    _primary, residual = view.tracker.try_split(0)
    return read, view, residual


def test_a_reader_with_a_backlog_comes_back_at_once_and_pauses_once_caught_up(
    kafka_bootstrap: str,
    topic: str,
    create_topic: Callable,
    produce: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_topic(topic, 1)
    for n in range(12):
        produce(topic, article_json(id=f"r-{n}"), partition=0)
    # A backlog of three slices: a poll brings 5 records at most, and a slice ends at 5.
    monkeypatch.setattr(kafka_read, "_MAX_POLL_RECORDS", 5)
    monkeypatch.setattr(kafka_read, "_STREAM_SLICE_RECORDS", 5)
    start = TopicStart(topic, ((0, 0),))
    reader = _ReadTopicFn(KafkaSettings.from_flags(kafka_bootstrap))
    reader.setup()
    try:
        positions = TopicPositions(start.positions)
        slices = []
        while sum(read for read, _ in slices) < 12 and len(slices) < 10:
            read, view, positions = _slice(reader, start, positions)
            slices.append((read, view.deferred))
    finally:
        reader.teardown()
    # Slices that ended at their limit with records waiting ask for no pause: a pause while
    # the topic holds a backlog leaves a core idle. The slice that caught up (its last poll
    # found nothing) waits before polling again.
    pause = kafka_read._RESUME_DELAY
    assert slices == [(5, [None]), (5, [None]), (2, [pause])]
