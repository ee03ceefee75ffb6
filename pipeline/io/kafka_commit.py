"""Committing Kafka offsets only once every record below them is durable.

The streaming reader reports each stretch of offsets it read (a range: where it
started, where it stopped, how many records it claimed); the writers report the
offsets they wrote. An :class:`OffsetLedger` per partition matches the two and
says how far the consumer group may be committed: to the end of the longest run
of fully written ranges from the start.

Example:
    ledger = OffsetLedger(next_start=100)
    ledger.add_range(100, 150, count=50); ledger.acknowledge(range(100, 150))
    ledger.advance()   # 150
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.transforms.window import GlobalWindows
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.io.kafka_client import KafkaSettings, consumer, patiently

__all__ = ["CommitOffsets", "OffsetLedger", "ReadRange"]

LOGGER = logging.getLogger(__name__)
# One commit attempt; through a broker outage attempts repeat (see ``patiently``).
_COMMIT_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class ReadRange:
    """The reader claimed ``count`` records in offsets ``[start, stop)`` of a partition."""

    key: str
    start: int
    stop: int
    count: int


@dataclass
class OffsetLedger:
    """Ranges read and offsets written for one partition: pure bookkeeping.

    ``next_start`` is where the next uncommitted range must begin: the run's
    start offset for the partition, or, for a partition found later, the start
    of the empty range the reader reports when it opens it.
    """

    next_start: int | None = None
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    written: set[int] = field(default_factory=set)

    def add_range(self, start: int, stop: int, count: int) -> None:
        """Record a range the reader claimed (a retried read replaces the same start)."""
        if self.next_start is None and start == stop:
            self.next_start = start
            return
        self.ranges[start] = (stop, count)

    def acknowledge(self, offsets: Iterable[int]) -> None:
        """Record offsets that are now in an output file."""
        self.written.update(offsets)

    def advance(self) -> int | None:
        """Retire the written ranges from ``next_start``: the offset to commit, if it moved."""
        committed = None
        while self.next_start is not None and self.next_start in self.ranges:
            start = self.next_start
            stop, count = self.ranges[start]
            done = {offset for offset in self.written if start <= offset < stop}
            if len(done) < count:
                break
            del self.ranges[start]
            self.written -= done
            if stop > start:
                committed = stop
            self.next_start = stop
        return committed


class _CommitFn(beam.DoFn):
    LEDGER = ReadModifyWriteStateSpec("ledger", PickleCoder())

    def __init__(self, settings: KafkaSettings, group: str, starts: dict[str, int]) -> None:
        self._settings = settings
        self._group = group
        self._starts = starts

    def setup(self) -> None:
        self._committer = patiently(
            self._settings,
            "committing offsets",
            lambda: consumer(self._settings, group_id=self._group),
        )

    def teardown(self) -> None:
        self._committer.close()

    def process(
        self,
        keyed: tuple[str, Any],
        ledger_state: Any = beam.DoFn.StateParam(LEDGER),  # noqa: B008 - Beam's idiom
    ) -> Iterator[tuple[str, int]]:
        key, event = keyed
        ledger: OffsetLedger = ledger_state.read() or OffsetLedger(self._starts.get(key))
        if isinstance(event, ReadRange):
            ledger.add_range(event.start, event.stop, event.count)
        else:
            ledger.acknowledge(event)
        offset = ledger.advance()
        ledger_state.write(ledger)
        if offset is None:
            return
        topic, _, partition = key.rpartition("/")
        tp = TopicPartition(topic, int(partition))
        patiently(
            self._settings,
            "committing offsets",
            lambda: self._committer.commit(
                {tp: OffsetAndMetadata(offset, "", -1)}, timeout_ms=_COMMIT_TIMEOUT_MS
            ),
        )
        LOGGER.info("committed %s[%s]@%d for group %s", topic, partition, offset, self._group)
        yield key, offset


class CommitOffsets(beam.PTransform):
    """``(ranges, acknowledgements...)`` → commits; outputs ``(topic/partition, offset)``.

    ``starts`` maps ``topic/partition`` to the offset the run started reading at.
    """

    def __init__(self, settings: KafkaSettings, group: str, starts: dict[str, int]) -> None:
        super().__init__()
        self._settings = settings
        self._group = group
        self._starts = starts

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> beam.PCollection:
        """Key both kinds of report by partition and keep one ledger per partition."""
        ranges, *acknowledgements = inputs
        reports = [ranges | "KeyRanges" >> beam.Map(lambda r: (r.key, r))] + [
            acks | f"Global{n}" >> beam.WindowInto(GlobalWindows())
            for n, acks in enumerate(acknowledgements)
        ]
        return (
            reports
            | "Reports" >> beam.Flatten().with_output_types(tuple[str, Any])
            | "Commit"
            >> beam.ParDo(_CommitFn(self._settings, self._group, self._starts)).with_input_types(
                tuple[str, Any]
            )
        )
