"""Helpers for reliability tests and ``bench/soak.py``: streams to kill, a steady feeder, checks.

The checks compare input and output sets by Kafka coordinate (partition, offset), the way
Kafka's own system tests compare what was produced with what was consumed: every input
record must be in exactly one of the three outputs, at least once.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
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
from tests.conftest import WIRENEWS, article_json, read_avro, story_body

OUTPUTS = ("articles", "duplicates", "dead_letters")
# A copy follows its original by this many messages of the same partition.
COPY_DISTANCE = 10
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
        """SIGKILL the job, Prism and its workers: no chance to flush or commit anything.

        Returns once no process of the group is left, so a restart never races a survivor.
        """
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while group_members(self.process.pid):
            assert time.monotonic() < deadline, (
                f"processes of the killed job survived: {group_members(self.process.pid)}"
            )
            time.sleep(0.1)

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

    def runs_up(self) -> int:
        """How many runs so far got as far as streaming (their stop signals then stop them)."""
        return self.log.read_text().count("streaming until stopped")

    def starts(self) -> list[dict[int, int]]:
        """Where each run so far began reading, per partition, from its log."""
        found = re.findall(rf"reading {re.escape(self.topic)} from (.+)", self.log.read_text())
        return [{int(p): int(o) for p, o in re.findall(r"\[(\d+)\]@(\d+)", line)} for line in found]

    def running(self) -> bool:
        """Whether the job is still up."""
        return self.process is not None and self.process.poll() is None


def start_as_a_terminal_would(command: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``command`` in a session of its own, taking SIGINT as a terminal's foreground job does.

    That is SIGINT's default even where these tests run with it ignored (in the
    background): a handler here becomes the default after exec.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, start_new_session=True, **popen)
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_as_a_terminal_would(process: subprocess.Popen[bytes], log: Path) -> str:
    """Ctrl-C: SIGINT to the job's whole process group, its runner included; the job's log.

    The job must exit with status 0, without a Python traceback, having cancelled its
    runner's job while the runner still lived, and leave no process of its group behind.
    """
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "the runner had already stopped" not in text, "the runner died of the Ctrl-C"
    deadline = time.monotonic() + 15
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert group_members(process.pid) == [], "the runner outlived the job"
    return text


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@dataclass
class Feeder:
    """Produces articles at a steady rate on its own thread, as an upstream wire would.

    The producer is idempotent and waits out broker outages; ``acked`` holds the ids
    the broker acknowledged, which is what the pipeline owes an output. Every
    ``garbage_every``-th message is broken JSON (a dead letter); every
    ``copy_every``-th is an exact copy, under its own id, of the article sent
    ``COPY_DISTANCE`` messages earlier in the same partition (a duplicate): ``copies``
    maps each copy's id to its original's.
    """

    bootstrap: str
    topic: str
    partitions: int
    rate: float
    prefix: str = "a"
    limit: int | None = None
    garbage_every: int = 0
    copy_every: int = 0
    acked: set[str] = field(default_factory=set)
    copies: dict[str, str] = field(default_factory=dict)
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

    def finished(self) -> bool:
        """Whether every message up to ``limit`` has been handed to the producer."""
        return self.limit is not None and self.sent >= self.limit

    def is_garbage(self, n: int) -> bool:
        """Whether message ``n`` is broken JSON."""
        return bool(self.garbage_every) and n % self.garbage_every == self.garbage_every - 1

    def copy_of(self, n: int) -> int | None:
        """The message that message ``n`` copies, if it is a copy of a plain article."""
        if not self.copy_every or n % self.copy_every != self.copy_every - 1 or self.is_garbage(n):
            return None
        original = n - COPY_DISTANCE * self.partitions  # the same partition
        if original < 0 or self.is_garbage(original) or self.copy_of(original) is not None:
            return None
        return original

    def message(self, n: int) -> bytes:
        """The value of message ``n``."""
        article_id = f"{self.prefix}-{n}"
        if self.is_garbage(n):
            return b'{"id": "%s", "body": ' % article_id.encode()
        original = self.copy_of(n)
        if original is None:
            return article_json(id=article_id)
        self.copies[article_id] = f"{self.prefix}-{original}"
        return article_json(id=article_id, body=story_body(f"{self.prefix}-{original}"))

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set() and not self.finished():
            n = self.sent
            article_id = f"{self.prefix}-{n}"
            future = self._producer.send(
                self.topic,
                key=article_id.encode(),
                value=self.message(n),
                partition=n % self.partitions,
            )
            future.add_callback(lambda _meta, i=article_id: self._done(i, None))
            future.add_errback(lambda exc, i=article_id: self._done(i, exc))
            self.sent += 1
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def expected_output(self, article_id: str) -> str:
        """The output message ``article_id`` belongs in."""
        n = int(article_id.rpartition("-")[2])
        if self.is_garbage(n):
            return "dead_letters"
        return "duplicates" if self.copy_of(n) is not None else "articles"

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


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int | None]:
    """The end offset of each partition, None where it is empty (as ``committed`` has it)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: end or None for tp, end in consumer.end_offsets(tps).items()}
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


@dataclass
class Verdict:
    """A kill-and-restart run checked: every list is empty when nothing went wrong.

    ``replayed_copies`` counts copies written as articles because their original
    had been committed before a kill and they had not: the dedup state died with
    the job, so after the restart the copy had nothing to match (README, Guarantees).
    """

    comparison: Comparison
    kills: int
    seconds: float
    kills_after_commits: int = 0
    expected: dict[str, int] = field(default_factory=dict)
    replayed_copies: int = 0
    lost: list[Coordinate] = field(default_factory=list)
    made_up: list[Coordinate] = field(default_factory=list)
    misplaced: list[str] = field(default_factory=list)
    differing_twice: list[Coordinate] = field(default_factory=list)
    ahead_of_durable: list[Coordinate] = field(default_factory=list)
    wrong_starts: list[str] = field(default_factory=list)
    feed_failures: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, list[Any]]:
        """The checks that failed, each with its first examples."""
        found = {
            "lost": self.lost,
            "made_up": self.made_up,
            "misplaced": self.misplaced,
            "differing_twice": self.differing_twice,
            "ahead_of_durable": self.ahead_of_durable,
            "wrong_starts": self.wrong_starts,
            "feed_failures": self.feed_failures,
        }
        return {name: items[:10] for name, items in found.items() if items}

    def figures(self) -> dict[str, Any]:
        """The soak figures: the comparison's counts, kills, and how long it all took."""
        return {
            **self.comparison.as_dict(),
            # Repeats that differ, other than the copies a restart explains (replayed_copies).
            "differing_twice": len(self.differing_twice),
            "kills": self.kills,
            "kills_after_commits": self.kills_after_commits,
            "restarts": self.kills,
            "replayed_copies": self.replayed_copies,
            "misplaced": len(self.misplaced),
            "ahead_of_durable": len(self.ahead_of_durable),
            "seconds": round(self.seconds, 1),
        }


@dataclass
class KillRestart:
    """The kill-and-restart scenario of issue #10: feed steadily, SIGKILL the job, restart it.

    Each (re)started job is killed at a seeded random point and restarted with the
    same group: the 1st, 3rd… kill lands within ``pause[0]`` seconds after the run's
    first commit, the others ``pause`` seconds after it is up (often before it
    commits). At each kill the committed offsets are checked against the files on
    disk (nothing below a commit may be missing) and kept, to check where the next
    run starts and to explain copies that a restart turns into articles.
    """

    bootstrap: str
    topic: str
    workdir: Path
    partitions: int = 2
    rate: float = 5.0
    limit: int | None = None
    seconds: float | None = None
    kills: int | None = None
    pause: tuple[float, float] = (5.0, 20.0)
    seed: int = 0
    patience: float = 120.0
    garbage_every: int = 40
    copy_every: int = 25
    group: str = "kill-restart"

    def run(self) -> Verdict:
        """Run the scenario to the end (drained and stopped) and check the outputs."""
        rng = random.Random(self.seed)
        out = self.workdir / "out"
        stream = Stream(
            self.bootstrap,
            self.topic,
            str(out),
            self.group,
            self.workdir / "stream.log",
            flags=("--window", "2"),
        )
        feeder = Feeder(
            self.bootstrap,
            self.topic,
            self.partitions,
            rate=self.rate,
            limit=self.limit,
            garbage_every=self.garbage_every,
            copy_every=self.copy_every,
        )
        began = time.monotonic()
        code: int | None = None
        at_kills: list[dict[int, int | None]] = []
        ahead: list[Coordinate] = []
        stream.start()
        feeder.start()
        try:
            self._kill_and_restart(stream, out, rng, began, at_kills=at_kills, ahead=ahead)
            if self.limit is not None:
                feeding = self.limit / self.rate
                wait_until(feeder.finished, "the feeder", [stream], self.patience + feeding)
            feeder.stop()
            inputs = input_coordinates(self.bootstrap, self.topic)
            ends = {
                p: max((o + 1 for q, o in inputs if q == p), default=None)
                for p in range(self.partitions)
            }
            wait_until(
                lambda: self._committed() == ends and stream.runs_up() > len(at_kills),
                "the group to commit everything",
                [stream],
                self.patience,
            )
            code = stream.stop()
        finally:
            feeder.stop()
            if stream.running():
                stream.stop()
        assert code == 0, f"the last run exited {code}:\n{stream.log.read_text()[-3000:]}"
        assert stream.process is not None
        assert not group_members(stream.process.pid), "the stopped job left processes behind"
        outputs = file_outputs(out)
        ahead += durable_below_commits(self._committed(), outputs)
        verdict = self._check(inputs, outputs, feeder, at_kills)
        verdict.ahead_of_durable = ahead
        verdict.kills_after_commits = sum(1 for c in at_kills if any(c.values()))
        verdict.seconds = time.monotonic() - began
        verdict.wrong_starts = self._wrong_starts(stream.starts(), at_kills)
        return verdict

    def _kill_and_restart(
        self,
        stream: Stream,
        out: Path,
        rng: random.Random,
        began: float,
        *,
        at_kills: list[dict[int, int | None]],
        ahead: list[Coordinate],
    ) -> None:
        """Kill and restart: commits at each kill join ``at_kills``, any early ones ``ahead``."""
        while self._more_kills(len(at_kills), began):
            self._wait_until_up(stream, runs=len(at_kills) + 1)
            if len(at_kills) % 2 == 0:  # every other kill lands just after a commit
                self._wait_for_a_commit(stream)
                pause = rng.uniform(0.0, self.pause[0])
            else:
                pause = rng.uniform(*self.pause)
            time.sleep(max(0.0, min(pause, self._left(began))))
            if self._left(began) <= 0:
                return  # time is up (--seconds): no kill half-way through a pause
            stream.kill()
            time.sleep(0.5)  # a commit the job sent just before dying lands now or never
            commits = self._committed()
            ahead += durable_below_commits(commits, file_outputs(out))
            at_kills.append(commits)
            stream.start()

    def _left(self, began: float) -> float:
        """Seconds left to feed and kill, if the run has a length."""
        if self.seconds is None:
            return float("inf")
        return self.seconds - (time.monotonic() - began)

    def _more_kills(self, done: int, began: float) -> bool:
        if self.kills is not None and done >= self.kills:
            return False
        return self.seconds is None or time.monotonic() - began < self.seconds

    def _committed(self) -> dict[int, int | None]:
        return committed(self.bootstrap, self.group, self.topic, self.partitions)

    def _wait_until_up(self, stream: Stream, runs: int) -> None:
        """Until this run has planned its read and is streaming."""
        wait_until(lambda: stream.runs_up() >= runs, "the job to start", [stream], self.patience)

    def _wait_for_a_commit(self, stream: Stream) -> None:
        """Until the group's offsets move (or there is nothing left to commit)."""
        before = self._committed()

        def moved() -> bool:
            now = self._committed()
            return now != before or now == end_offsets(self.bootstrap, self.topic, self.partitions)

        wait_until(moved, "the job to commit", [stream], self.patience)

    def _check(
        self,
        inputs: dict[Coordinate, str | None],
        outputs: dict[str, list[dict[str, Any]]],
        feeder: Feeder,
        at_kills: list[dict[int, int | None]],
    ) -> Verdict:
        result = compare(inputs, outputs)
        kinds: dict[Coordinate, set[str]] = defaultdict(set)
        for name, records in outputs.items():
            for record in records:
                kinds[coordinate(record)].add(name)
        where = {key: c for c, key in inputs.items()}

        def replayed_alone(copy: Coordinate, original: Coordinate) -> bool:
            """Some restart began after the original's commit but at or before the copy."""
            return any(
                (commits.get(original[0]) or 0) > original[1]
                and (commits.get(copy[0]) or 0) <= copy[1]
                for commits in at_kills
            )

        explained: set[Coordinate] = set()
        misplaced = []
        counts = dict.fromkeys(OUTPUTS, 0)
        for c, key in sorted(inputs.items()):
            expected = feeder.expected_output(str(key))
            counts[expected] += 1
            found = kinds.get(c, set())
            if expected == "duplicates" and "articles" in found:
                original = where[feeder.copies[str(key)]]
                if found <= {"articles", "duplicates"} and replayed_alone(c, original):
                    explained.add(c)
                    continue
            if found and found != {expected}:
                misplaced.append(f"{key} at {c}: in {sorted(found)}, expected {expected}")
        return Verdict(
            comparison=result,
            kills=len(at_kills),
            seconds=0.0,
            expected=counts,
            replayed_copies=len(explained),
            lost=result.lost,
            made_up=result.made_up,
            misplaced=misplaced,
            differing_twice=[c for c in result.differing_twice if c not in explained],
            feed_failures=list(feeder.failed)
            + ([] if set(where) == feeder.acked else ["the topic does not hold what was acked"]),
        )

    @staticmethod
    def _wrong_starts(
        starts: list[dict[int, int]], at_kills: list[dict[int, int | None]]
    ) -> list[str]:
        """Each restart must begin at the offsets committed when the job before it was killed."""
        if len(starts) != len(at_kills) + 1:
            return [f"{len(starts)} runs logged where they start, for {len(at_kills)} kills"]
        return [
            f"run {n + 2} started at {start}, the group had {commits}"
            for n, (start, commits) in enumerate(zip(starts[1:], at_kills, strict=True))
            if start != {p: o or 0 for p, o in commits.items()}
        ]
