"""Reading a Kafka topic with splittable DoFns on kafka-python.

Bounded mode (``--until-end``) plans one offset range per partition, up to the
end offsets present at launch; runners may split the ranges so several workers
share a partition. Streaming mode reads the whole topic in one restriction: the
reader polls every partition, picks up partitions added later, returns to the
runner every few seconds (``defer_remainder``; it comes back at once while a
backlog waits, after a pause once caught up) so portable runners can
checkpoint, and keeps one watermark that is right for all partitions (runners
do not reliably combine per-partition watermarks).

Example:
    read = pipeline | ReadFromKafka(settings, "wire", start="earliest", group=None, bounded=True)
    read.offsets_to_commit  # the end offsets, to commit once the outputs are durable
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.io.iobase import RestrictionProgress, RestrictionTracker
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider, WatermarkEstimatorProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Duration, Timestamp
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from pipeline.io.kafka_client import (
    CONTENT_TYPE_HEADER,
    BrokerWatch,
    KafkaSettings,
    KafkaUnavailable,
    consumer,
    partitions_of,
    patiently,
    retriable,
    start_offsets,
)
from pipeline.io.kafka_commit import ReadRange
from transforms.metrics import StepMetrics
from transforms.records import MediaType, Origin, RawRecord

__all__ = [
    "RANGES",
    "PartitionRange",
    "ReadFromKafka",
    "TopicPositions",
    "plan_ranges",
    "to_raw_record",
]

LOGGER = logging.getLogger(__name__)

# The reader's outputs: raw records, and (streaming) the offset ranges it read.
RECORDS = "records"
RANGES = "ranges"
# Bounded ranges are split into pieces of this many offsets so several workers
# can share one big partition.
_SPLIT_OFFSETS = 5_000
_POLL_TIMEOUT_MS = 500
_MAX_POLL_RECORDS = 500
# A bounded read that sees nothing for this long while short of its end offset
# gives up loudly rather than hang.
_STALL_SECONDS = 120.0
# A streaming read returns to the runner after this long or this many records.
_STREAM_SLICE_SECONDS = 2.0
_STREAM_SLICE_RECORDS = 5_000
_RESUME_DELAY = Duration(seconds=1)
# While the broker does not answer, the reader checks back this often.
_OUTAGE_RESUME_DELAY = Duration(seconds=2)
# Records of one partition may arrive this far out of time order before the
# watermark passes them (they are then stamped with the watermark, not dropped).
_WATERMARK_SKEW = Duration(seconds=2)
# How often the streaming reader refreshes metadata, and so finds new partitions.
_METADATA_MAX_AGE_MS = 10_000
# The reader's reconnect backoff stays short (kafka-python's grows to 30 s), and after an
# outage its fresh consumer gives up bootstrapping quickly, to try again a little later.
_RECONNECT_BACKOFF_MAX_MS = 1_000
_REBOOTSTRAP_TIMEOUT_MS = 3_000


@dataclass(frozen=True)
class PartitionRange:
    """Offsets ``[start, stop)`` of one partition; ``stop`` None reads on forever."""

    topic: str
    partition: int
    start: int
    stop: int | None


def plan_ranges(
    settings: KafkaSettings,
    topic: str,
    start: str | datetime,
    group: str | None,
    bounded: bool,
) -> list[PartitionRange]:
    """One range per partition, from the start position to the end offsets now (bounded)."""
    client = consumer(settings)
    try:
        partitions = partitions_of(client, topic)
        ends = client.end_offsets(partitions) if bounded else {}
    finally:
        client.close()
    starts = start_offsets(settings, partitions, start, group)
    return [
        PartitionRange(tp.topic, tp.partition, starts[tp], ends[tp] if bounded else None)
        for tp in partitions
    ]


def to_raw_record(message: ConsumerRecord) -> RawRecord:
    """A Kafka message as a raw record: value bytes, key as id, content type from headers."""
    headers = {key.lower(): value for key, value in message.headers or ()}
    media = headers.get(CONTENT_TYPE_HEADER, b"").decode("ascii", "replace")
    payload = message.value or b""
    if media.startswith(MediaType.TEXT.value):
        media_type = MediaType.TEXT
    elif media.startswith(MediaType.JSON.value) or payload.lstrip()[:1] == b"{":
        media_type = MediaType.JSON
    else:
        media_type = MediaType.TEXT
    key = None
    if message.key:
        try:
            key = message.key.decode("utf-8").strip() or None
        except UnicodeDecodeError:
            LOGGER.warning(
                "%s[%d]@%d: key is not UTF-8; the id comes from the article instead",
                message.topic,
                message.partition,
                message.offset,
            )
    return RawRecord(
        payload=payload,
        origin=Origin.kafka(message.topic, message.partition, message.offset),
        media_type=media_type,
        key=key,
    )


class _PartitionRanges(RestrictionProvider):
    """Bounded mode: each partition's ``[start, stop)``, split so workers can share it."""

    def initial_restriction(self, element: PartitionRange) -> OffsetRange:
        return OffsetRange(element.start, element.stop)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def split(self, element: PartitionRange, restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield from restriction.split(_SPLIT_OFFSETS)

    def restriction_size(self, element: PartitionRange, restriction: OffsetRange) -> int:
        return restriction.size()


class _ReadRangeFn(beam.DoFn):
    """Bounded mode: read the claimed offsets of one partition, then stop."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings

    def setup(self) -> None:
        self._consumer = consumer(
            self._settings, max_poll_records=_MAX_POLL_RECORDS, auto_offset_reset="none"
        )
        self._metrics = StepMetrics("read")

    def teardown(self) -> None:
        self._consumer.close()

    def process(
        self,
        element: PartitionRange,
        tracker: OffsetRestrictionTracker = beam.DoFn.RestrictionParam(_PartitionRanges()),  # noqa: B008 - Beam's idiom
    ) -> Iterator[TimestampedValue]:
        tp = TopicPartition(element.topic, element.partition)
        self._consumer.assign([tp])
        self._consumer.seek(tp, tracker.current_restriction().start)
        last_progress = time.monotonic()
        while True:
            batch = self._consumer.poll(timeout_ms=_POLL_TIMEOUT_MS).get(tp, [])
            for message in batch:
                if not tracker.try_claim(message.offset):
                    return
                self._metrics.received()
                self._metrics.ok()
                yield TimestampedValue(to_raw_record(message), _event_time(message))
            position = self._consumer.position(tp)
            stop = tracker.current_restriction().stop
            if position >= stop:
                tracker.try_claim(position)  # at or past the end: marks the range done
                return
            if batch:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > _STALL_SECONDS:
                message = (
                    f"{tp.topic}[{tp.partition}]: no records for {_STALL_SECONDS:.0f} s at "
                    f"offset {position}, short of {stop}"
                )
                raise TimeoutError(message)


@dataclass(frozen=True)
class TopicPositions:
    """Streaming restriction: the next offset to read in each partition of the topic.

    ``done`` marks the part of the restriction already read when the reader
    checkpoints; the rest goes on as a new restriction from the positions reached.
    """

    positions: tuple[tuple[int, int], ...]
    done: bool = False


class _TopicTracker(RestrictionTracker):
    """Claims move a partition's position past a record (or to a new partition's start).

    Only checkpoints split the restriction: one reader per topic keeps one
    watermark that is right for every partition.
    """

    def __init__(self, restriction: TopicPositions) -> None:
        self._restriction = restriction
        self._positions = dict(restriction.positions)
        self._stopped = restriction.done

    def current_restriction(self) -> TopicPositions:
        return TopicPositions(tuple(sorted(self._positions.items())), self._stopped)

    def current_progress(self) -> RestrictionProgress:
        # An endless read is never any fraction done. Given as a fraction, not as work
        # counts: Beam adds the bytes output so far to work counts, and that sum is NaN
        # while an output's size is not yet sampled; a runner's split request (Prism asks
        # whenever a bundle stalls, e.g. on a slow broker) then failed the whole job.
        return RestrictionProgress(fraction=0.0)

    def try_claim(self, position: tuple[int, int]) -> bool:
        if self._stopped:
            return False
        partition, next_offset = position
        self._positions[partition] = next_offset
        return True

    def try_split(
        self, fraction_of_remainder: float
    ) -> tuple[TopicPositions, TopicPositions] | None:
        if self._stopped or fraction_of_remainder != 0:
            return None
        self._stopped = True
        primary = TopicPositions(self._restriction.positions, done=True)
        return primary, TopicPositions(tuple(sorted(self._positions.items())))

    def check_done(self) -> None:
        if not self._stopped:
            message = "the topic reader returned without checkpointing"
            raise ValueError(message)

    def is_bounded(self) -> bool:
        return False


class _TopicRestrictions(RestrictionProvider):
    def initial_restriction(self, element: TopicStart) -> TopicPositions:
        return TopicPositions(element.positions)

    def create_tracker(self, restriction: TopicPositions) -> _TopicTracker:
        return _TopicTracker(restriction)

    def restriction_size(self, element: TopicStart, restriction: TopicPositions) -> int:
        return 1


class _HeldWatermarks(WatermarkEstimatorProvider):
    """Manual watermarks that start at the beginning of time rather than "unknown"."""

    def initial_estimator_state(
        self, element: TopicStart, restriction: TopicPositions
    ) -> Timestamp:
        return MIN_TIMESTAMP

    def create_watermark_estimator(self, estimator_state: Timestamp) -> ManualWatermarkEstimator:
        return ManualWatermarkEstimator(estimator_state)


@dataclass(frozen=True)
class TopicStart:
    """Streaming mode's one element: the topic and where each known partition starts."""

    topic: str
    positions: tuple[tuple[int, int], ...]


class _ReadTopicFn(beam.DoFn):
    """Streaming mode: read every partition of a topic for a while, then checkpoint.

    The watermark is the oldest newest-record time among partitions that still
    have records to deliver, less a skew; caught-up partitions hold nothing, and
    when all are caught up it follows the clock. A record older than the
    watermark is stamped with the watermark, so no window ever sees it late and
    nothing is dropped.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings

    def setup(self) -> None:
        self._consumer: KafkaConsumer | None = patiently(
            self._settings, "the Kafka reader", self._new_consumer
        )
        self._metrics = StepMetrics("read")
        self._watch = BrokerWatch(self._settings, "reading")
        self._closing = False

    def teardown(self) -> None:
        # A bundle still polling when the worker shuts down sees its consumer closed: no outage.
        self._closing = True
        self._drop_consumer()

    def _new_consumer(self, **overrides: Any) -> KafkaConsumer:
        return consumer(
            self._settings,
            max_poll_records=_MAX_POLL_RECORDS,
            auto_offset_reset="earliest",
            metadata_max_age_ms=_METADATA_MAX_AGE_MS,
            reconnect_backoff_max_ms=_RECONNECT_BACKOFF_MAX_MS,
            **overrides,
        )

    def _drop_consumer(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._consumer.close(timeout_ms=_POLL_TIMEOUT_MS)
            self._consumer = None

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        element: TopicStart,
        tracker: _TopicTracker = beam.DoFn.RestrictionParam(_TopicRestrictions()),  # noqa: B008
        watermark: ManualWatermarkEstimator = beam.DoFn.WatermarkEstimatorParam(_HeldWatermarks()),  # noqa: B008
    ) -> Iterator[TimestampedValue | beam.pvalue.TaggedOutput]:
        positions = dict(tracker.current_restriction().positions)
        starts = self._reconnect(element.topic, positions, tracker)
        if starts is None:
            return
        for tp, start in starts.items():
            tracker.try_claim((tp.partition, start))
            positions[tp.partition] = start
            LOGGER.info("picked up new partition %s[%d] at %d", tp.topic, tp.partition, start)
            yield self._range(tp, start, start, 0, watermark)
        partitions = [TopicPartition(element.topic, p) for p in sorted(positions)]
        self._consumer.assign(partitions)
        for tp in partitions:
            self._consumer.seek(tp, positions[tp.partition])
        started = time.monotonic()
        newest: dict[int, Timestamp] = {}
        claimed: dict[int, int] = {}
        stops: dict[int, int] = {}
        read = 0
        stopped = False
        broker_down: KafkaError | None = None
        batches: dict[TopicPartition, list[ConsumerRecord]] = {}
        try:  # a broker outage must not fail the bundle (Prism would fail the job): wait it out
            while not stopped:
                batches = self._poll(partitions)
                floor = watermark.current_watermark()
                for tp, messages in batches.items():
                    for message in messages:
                        # Downstream steps run inside this bundle as records are yielded: end
                        # the slice on time, so a slow step (the NLP) never makes it long.
                        if time.monotonic() - started > _STREAM_SLICE_SECONDS:
                            break
                        if not tracker.try_claim((tp.partition, message.offset + 1)):
                            stopped = True  # the runner checkpointed us
                            break
                        stamp = max(_event_time(message), floor)
                        newest[tp.partition] = max(stamp, newest.get(tp.partition, stamp))
                        claimed[tp.partition] = claimed.get(tp.partition, 0) + 1
                        stops[tp.partition] = message.offset + 1
                        read += 1
                        self._metrics.received()
                        self._metrics.ok()
                        yield TimestampedValue(to_raw_record(message), stamp)
                self._hold(watermark, partitions, newest)
                elapsed = time.monotonic() - started
                if (
                    stopped
                    or not batches
                    or elapsed > _STREAM_SLICE_SECONDS
                    or read >= _STREAM_SLICE_RECORDS
                ):
                    break
        except KafkaError as exc:
            broker_down = exc
        for tp in partitions:  # report what was read, so offsets can be committed once written
            if claimed.get(tp.partition):
                start, stop = positions[tp.partition], stops[tp.partition]
                yield self._range(tp, start, stop, claimed[tp.partition], watermark)
        # The last poll brought records: the slice ended on time, not because it caught up.
        backlog = bool(batches)
        self._checkpoint(tracker, stopped=stopped, broker_down=broker_down, backlog=backlog)

    def _reconnect(
        self, topic: str, positions: dict[int, int], tracker: _TopicTracker
    ) -> dict[TopicPartition, int] | None:
        """A consumer (a fresh one after an outage) and the new partitions; None: wait again."""
        try:
            if self._consumer is None:
                self._consumer = self._new_consumer(bootstrap_timeout_ms=_REBOOTSTRAP_TIMEOUT_MS)
            return self._new_partitions(topic, positions)
        except (KafkaError, KafkaUnavailable) as exc:
            # A broker outage must not fail the bundle (Prism would fail the job): wait it out.
            if not retriable(exc):
                raise
            self._outage(exc, tracker)
            return None

    def _checkpoint(
        self,
        tracker: _TopicTracker,
        *,
        stopped: bool,
        broker_down: KafkaError | None,
        backlog: bool,
    ) -> None:
        """Come back for more, unless the runner already split us off.

        A slice that ended on time with records still waiting comes back at once;
        only a caught-up reader pauses before it polls again.
        """
        if broker_down is not None:
            self._outage(broker_down, tracker)
        elif not stopped:
            self._watch.ok()
            tracker.defer_remainder(None if backlog else _RESUME_DELAY)

    def _hold(
        self,
        watermark: ManualWatermarkEstimator,
        partitions: list[TopicPartition],
        newest: dict[int, Timestamp],
    ) -> None:
        """Move the watermark up to what every partition has delivered."""
        held = self._held_at(partitions, newest)
        if held is not None:
            _advance(watermark, held - _WATERMARK_SKEW)

    def _poll(self, partitions: list[TopicPartition]) -> dict[TopicPartition, list[ConsumerRecord]]:
        """One poll; an empty one raises if the broker does not answer, rather than idles.

        kafka-python's poll swallows connection errors and returns nothing, which looks
        like a quiet topic: ask for the end offsets too, which need the broker.
        """
        batches = self._consumer.poll(timeout_ms=_POLL_TIMEOUT_MS)
        if not batches:
            self._consumer.end_offsets(partitions, timeout_ms=_POLL_TIMEOUT_MS)
        return batches

    def _outage(self, error: Exception, tracker: _TopicTracker) -> None:
        """Log the outage once, drop the consumer, and come back later from the positions reached.

        kafka-python 3.0's consumer could take over a minute to read again after the broker
        restarted (backed-off reconnects, stale fetch state); a fresh one bootstraps at once.
        """
        if not self._closing:
            self._watch.trouble(error)
            self._drop_consumer()
        tracker.defer_remainder(_OUTAGE_RESUME_DELAY)

    @staticmethod
    def _range(
        tp: TopicPartition, start: int, stop: int, count: int, watermark: ManualWatermarkEstimator
    ) -> beam.pvalue.TaggedOutput:
        reported = ReadRange(f"{tp.topic}/{tp.partition}", start, stop, count)
        return beam.pvalue.TaggedOutput(
            RANGES, TimestampedValue(reported, watermark.current_watermark())
        )

    def _new_partitions(self, topic: str, positions: dict[int, int]) -> dict[TopicPartition, int]:
        """Partitions added to the topic since the run started, with their first offsets."""
        known = self._consumer.partitions_for_topic(topic) or set()
        new = [TopicPartition(topic, p) for p in sorted(known - positions.keys())]
        return dict(self._consumer.beginning_offsets(new)) if new else {}

    def _held_at(
        self, partitions: list[TopicPartition], newest: dict[int, Timestamp]
    ) -> Timestamp | None:
        """Where the watermark may go: None while a lagging partition has told us nothing."""
        holds = []
        for tp in partitions:
            end = self._consumer.highwater(tp)
            # Bounded wait: a position may need the broker (after it restarts, to validate
            # it), and a bundle that makes no progress gets split by Prism, which fails.
            position = self._consumer.position(tp, timeout_ms=_POLL_TIMEOUT_MS)
            if end is not None and position >= end:
                continue  # caught up: the next record will be newer than now
            if tp.partition not in newest:
                return None
            holds.append(newest[tp.partition])
        return min(holds) if holds else Timestamp.now()


def _event_time(message: ConsumerRecord) -> Timestamp:
    if message.timestamp is None or message.timestamp < 0:
        return Timestamp.now()
    return Timestamp.of(message.timestamp / 1000)


def _advance(watermark: ManualWatermarkEstimator, to: Timestamp) -> None:
    if to > watermark.current_watermark():
        watermark.set_watermark(to)


class ReadFromKafka(beam.PTransform):
    """``PBegin`` → ``PCollection[RawRecord]`` from every partition of a topic.

    Start offsets are resolved when the transform is built (in the driver), so a
    bounded run knows the offsets to commit once its outputs are durable.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        *,
        start: str | datetime,
        group: str | None,
        bounded: bool,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._topic = topic
        self._bounded = bounded
        self.ranges = plan_ranges(settings, topic, start, group, bounded)
        LOGGER.info(
            "reading %s from %s",
            topic,
            ", ".join(
                f"[{r.partition}]@{r.start}" + (f"..{r.stop}" if r.stop is not None else "")
                for r in self.ranges
            ),
        )

    @property
    def offsets_to_commit(self) -> dict[TopicPartition, int]:
        """Per partition, the offset after the last one a bounded run reads."""
        return {
            TopicPartition(r.topic, r.partition): r.stop
            for r in self.ranges
            if r.stop is not None and r.stop > r.start
        }

    def expand(self, begin: beam.pvalue.PBegin) -> beam.pvalue.DoOutputsTuple:
        """Bounded: spread the partition ranges over workers. Streaming: one topic reader.

        Outputs ``records`` and, in streaming mode, the ``ranges`` read.
        """
        if self._bounded:
            return (
                begin
                | "Partitions" >> beam.Create([r for r in self.ranges if r.stop > r.start])
                | "SpreadPartitions" >> beam.Reshuffle()
                | "ReadPartitions"
                >> beam.ParDo(_ReadRangeFn(self._settings)).with_outputs(RANGES, main=RECORDS)
            )
        start = TopicStart(self._topic, tuple((r.partition, r.start) for r in self.ranges))
        return (
            begin
            | "Topic" >> beam.Create([start])
            | "ReadTopic"
            >> beam.ParDo(_ReadTopicFn(self._settings)).with_outputs(RANGES, main=RECORDS)
        )
