"""A broker outage in the middle of a streaming run: the job waits, carries on, loses nothing.

The broker here is this module's own (not the session's), so stopping it breaks no other test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from tests.integration.chaos import (
    Feeder,
    Stream,
    committed,
    compare,
    file_outputs,
    input_coordinates,
    wait_until,
)
from tests.integration.conftest import load_local_broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

OUTAGE_SECONDS = 20
PATIENCE = 150.0
PARTITIONS = 2


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[ModuleType, Path, str]]:
    broker = load_local_broker()
    state = tmp_path / "kafka"
    address = broker.start(state_dir=state, timeout=180.0)
    yield broker, state, address
    broker.stop(state)


def keys_in(bootstrap: str, topic: str) -> list[str]:
    """Every key in ``topic`` (an article's id, for our Avro output)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = consumer.end_offsets(tps)
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        keys: list[str] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for messages in consumer.poll(timeout_ms=500).values():
                keys.extend(m.key.decode() for m in messages)
        return keys
    finally:
        consumer.close()


def test_a_broker_outage_makes_the_stream_wait_and_carry_on_with_nothing_lost(
    own_broker: tuple[ModuleType, Path, str], tmp_path: Path
) -> None:
    broker, state, bootstrap = own_broker
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic("wire", PARTITIONS, 1)])
    finally:
        admin.close()
    out = tmp_path / "out"
    to_files = Stream(bootstrap, "wire", str(out), "files", tmp_path / "files.log")
    to_topic = Stream(
        bootstrap, "wire", f"kafka://{bootstrap}/wire-out", "topic", tmp_path / "topic.log"
    )
    streams = [to_files, to_topic]
    # Every 10th message is garbage, so dead letters are in flight too.
    feeder = Feeder(bootstrap, "wire", PARTITIONS, rate=4.0, garbage_every=10)
    for stream in streams:
        stream.start()
    feeder.start()
    try:
        wait_until(
            lambda: len(file_outputs(out)["articles"]) >= 5 and len(keys_in(bootstrap, "wire-out")),
            "both streams to write",
            streams,
            PATIENCE,
        )
        before = input_coordinates(bootstrap, "wire")
        broker.stop(state)
        time.sleep(OUTAGE_SECONDS)
        assert all(s.running() for s in streams), "a stream gave up during the outage"
        assert broker.start(state_dir=state, timeout=180.0) == bootstrap, "the address moved"
        # The restarted broker kept every record it had acknowledged.
        kept = input_coordinates(bootstrap, "wire")
        assert before.items() <= kept.items()
        time.sleep(5)  # a little live input after the outage too
        feeder.stop()
        assert not feeder.failed
        inputs = input_coordinates(bootstrap, "wire")
        ends = {p: 1 + max(o for q, o in inputs if q == p) for p in range(PARTITIONS)}
        wait_until(
            lambda: (
                committed(bootstrap, "files", "wire", PARTITIONS) == ends
                and committed(bootstrap, "topic", "wire", PARTITIONS) == ends
            ),
            "both groups to commit everything",
            streams,
            PATIENCE,
        )
    finally:
        broker.start(state_dir=state, timeout=180.0)  # a no-op unless the test failed mid-outage
        feeder.stop()
        codes = [stream.stop() for stream in streams]
    assert codes == [0, 0]

    assert {key for key in inputs.values()} == feeder.acked
    result = compare(inputs, file_outputs(out))
    assert (result.lost, result.in_two_outputs, result.made_up) == ([], [], [])
    assert result.dead_letters == sum(1 for k in feeder.acked if k.endswith("9"))
    # The topic sink: every article once at least, and the dead letters in their own topic.
    articles = set(keys_in(bootstrap, "wire-out"))
    letters = keys_in(bootstrap, "wire-out-dead-letters")
    assert articles == {k for k in feeder.acked if not k.endswith("9")}
    assert len(set(letters)) == result.dead_letters

    for stream in streams:
        # What the job said until it was asked to stop: once cancelled, Beam's SDK harness
        # prints the KeyError of the bundles it drops (its shutdown, not the outage).
        log = stream.log.read_text().partition("stopping: cancelling the streaming job")[0]
        assert "Traceback" not in log, log[-5000:]
        assert "is not answering" in log, log[-5000:]
        assert "answers again" in log, log[-5000:]
        warnings = [line for line in log.splitlines() if " WARNING pipeline." in line]
        assert len(warnings) <= 8, "\n".join(warnings)  # one line per step and event, no storm
