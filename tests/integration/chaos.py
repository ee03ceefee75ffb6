"""Helpers for reliability tests and ``bench/soak.py``: streams to kill, a steady feeder, checks.

The checks compare input and output sets by Kafka coordinate (partition, offset), the way
Kafka's own system tests compare what was produced with what was consumed: every input
record must be in exactly one of the three outputs, at least once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.runner import find_prism
from tests.conftest import WIRENEWS, article_json, read_avro

OUTPUTS = ("articles", "duplicates", "dead_letters")
# Fields a replay legitimately changes: when the record was made.
_REPLAY_STAMPS = frozenset({"ingested_at", "failed_at"})

Coordinate = tuple[int, int]


@dataclass
class Stream:
    """One ``wirenews run`` streaming job in its own process group (Prism and workers too)."""

    bootstrap: str
    topic: str
    output: str
    group: str
    log: Path
    flags: tuple[str, ...] = ("--dedup", "off", "--window", "2")
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch the job, appending its output to the log."""
        assert find_prism(), "Prism is not built: `make test` builds it (make prism)"
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [
                    str(WIRENEWS),
                    "run",
                    "--source",
                    f"kafka://{self.bootstrap}/{self.topic}",
                    "--group",
                    self.group,
                    "--output",
                    self.output,
                    *self.flags,
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the job, Prism and its workers: no chance to flush or commit anything."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """Ask the job to stop as a user would (SIGTERM); its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            # Prism's own process lives in the group; never leave it behind.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def running(self) -> bool:
        """Whether the job is still up."""
        return self.process is not None and self.process.poll() is None


@dataclass
class Feeder:
    """Produces articles at a steady rate on its own thread, as an upstream wire would.

    The producer is idempotent and waits out broker outages; ``acked`` holds the ids
    the broker acknowledged, which is what the pipeline owes an output.
    """

    bootstrap: str
    topic: str
    partitions: int
    rate: float
    prefix: str = "a"
    limit: int | None = None
    garbage_every: int = 0
    acked: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    sent: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            delivery_timeout_ms=300_000,
            max_block_ms=300_000,
            linger_ms=5,
        )

    def start(self) -> None:
        """Start feeding."""
        self._thread.start()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop feeding and wait until the broker has acknowledged (or refused) every send."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=330)
        self._producer.flush(timeout=300)
        self._producer.close()

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set() and (self.limit is None or self.sent < self.limit):
            n = self.sent
            article_id = f"{self.prefix}-{n}"
            garbage = self.garbage_every and n % self.garbage_every == self.garbage_every - 1
            value = b'{"id": "%s", "body": ' % article_id.encode() if garbage else None
            future = self._producer.send(
                self.topic,
                key=article_id.encode(),
                value=value or article_json(id=article_id),
                partition=n % self.partitions,
            )
            future.add_callback(lambda _meta, i=article_id: self._done(i, None))
            future.add_errback(lambda exc, i=article_id: self._done(i, exc))
            self.sent += 1
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _done(self, article_id: str, error: BaseException | None) -> None:
        with self._lock:
            if error is None:
                self.acked.add(article_id)
            else:
                self.failed.append(f"{article_id}: {error!r}")


def input_coordinates(bootstrap: str, topic: str) -> dict[Coordinate, str | None]:
    """Every record now in ``topic``: (partition, offset) → key."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        ends = consumer.end_offsets(partitions)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: dict[Coordinate, str | None] = {}
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for tp, messages in consumer.poll(timeout_ms=500).items():
                for m in messages:
                    if m.offset < ends[tp]:
                        found[tp.partition, m.offset] = (
                            m.key.decode("utf-8", "replace") if m.key else None
                        )
        return found
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    """The group's committed offset per partition (None where it never committed)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close()


def file_outputs(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The records of each output in a streaming output folder."""
    if not folder.exists():
        return {name: [] for name in OUTPUTS}
    return {name: read_avro(folder, name) for name in OUTPUTS}


def coordinate(record: dict[str, Any]) -> Coordinate:
    """Where an output record came from in the input topic."""
    origin = record["origin"]
    return origin["partition"], origin["offset"]


@dataclass
class Comparison:
    """Input records against output records, by coordinate."""

    fed: int
    written: int
    duplicates: int
    dead_letters: int
    lost: list[Coordinate]
    in_two_outputs: list[Coordinate]
    written_twice: int
    differing_twice: list[Coordinate]
    made_up: list[Coordinate]

    def as_dict(self) -> dict[str, int]:
        """The soak figures."""
        return {
            "fed": self.fed,
            "written": self.written,
            "duplicates": self.duplicates,
            "dead_letters": self.dead_letters,
            "lost": len(self.lost),
            "in_two_outputs": len(self.in_two_outputs),
            "written_twice": self.written_twice,
            "differing_twice": len(self.differing_twice),
            "made_up": len(self.made_up),
        }


def compare(
    inputs: dict[Coordinate, str | None], outputs: dict[str, list[dict[str, Any]]]
) -> Comparison:
    """Every input in exactly one output at least once; repeats identical but for their stamps."""
    kinds: dict[Coordinate, set[str]] = defaultdict(set)
    copies: dict[Coordinate, list[dict[str, Any]]] = defaultdict(list)
    for name, records in outputs.items():
        for record in records:
            where = coordinate(record)
            kinds[where].add(name)
            copies[where].append({k: v for k, v in record.items() if k not in _REPLAY_STAMPS})
    repeated = [c for c, found in copies.items() if len(found) > 1]
    return Comparison(
        fed=len(inputs),
        written=sum(1 for c in inputs if "articles" in kinds.get(c, ())),
        duplicates=sum(1 for c in inputs if "duplicates" in kinds.get(c, ())),
        dead_letters=sum(1 for c in inputs if "dead_letters" in kinds.get(c, ())),
        lost=sorted(c for c in inputs if c not in kinds),
        in_two_outputs=sorted(c for c, found in kinds.items() if len(found) > 1),
        written_twice=len(repeated),
        differing_twice=sorted(c for c in repeated if any(r != copies[c][0] for r in copies[c])),
        made_up=sorted(c for c in kinds if c not in inputs),
    )


def durable_below_commits(
    commits: dict[int, int | None], outputs: dict[str, list[dict[str, Any]]]
) -> list[Coordinate]:
    """Coordinates below a committed offset that are in no output: must be empty."""
    present = {coordinate(r) for records in outputs.values() for r in records}
    return [
        (partition, offset)
        for partition, upto in commits.items()
        for offset in range(upto or 0)
        if (partition, offset) not in present
    ]


def wait_until(
    condition: Callable[[], bool],
    what: str,
    streams: Iterable[Stream],
    patience: float,
) -> None:
    """Poll ``condition``; fail with the streams' logs if it does not hold in time."""
    streams = list(streams)
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if condition():
            return
        for stream in streams:
            if not stream.running():
                message = f"the stream stopped early:\n{stream.log.read_text()[-3000:]}"
                raise AssertionError(message)
        time.sleep(0.5)
    logs = "\n---\n".join(s.log.read_text()[-3000:] for s in streams)
    message = f"timed out waiting for {what}:\n{logs}"
    raise AssertionError(message)
