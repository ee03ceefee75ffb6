"""The local Kafka broker helper (deploy/kafka/local_broker.py) against a real broker.

Each test owns a broker in its own tmp dir on a free port, so these tests never
touch a developer's running broker in .local/kafka.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from tests.integration.conftest import load_local_broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def lb() -> ModuleType:
    module = load_local_broker()
    module.ensure_jars()  # first run downloads; keeps that time out of start-up timings
    return module


@pytest.fixture
def state_dir(lb: ModuleType, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "kafka"
    yield path
    lb.stop(path)  # whatever the test did, leave no broker behind


def _produce(addr: str, topic: str, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=addr, acks="all")
    try:
        producer.send(topic, value).get(timeout=30)
    finally:
        producer.close()


def _consume_one(addr: str, topic: str) -> bytes:
    consumer = KafkaConsumer(
        bootstrap_servers=addr,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    try:
        consumer.subscribe([topic])
        for message in consumer:
            return message.value
    finally:
        consumer.close()
    pytest.fail(f"no message on {topic} within 30 s")


def test_start_produce_consume_stop(lb: ModuleType, state_dir: Path) -> None:
    addr = lb.start(state_dir=state_dir)
    assert addr.startswith("127.0.0.1:")
    assert lb.status(state_dir) == addr
    assert (state_dir / "bootstrap").read_text().strip() == addr

    topic = "wirenews.local-broker-test"
    admin = KafkaAdminClient(bootstrap_servers=addr)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    _produce(addr, topic, b"hello wirenews")
    assert _consume_one(addr, topic) == b"hello wirenews"

    pid = (state_dir / "broker.pid").read_text()
    assert lb.start(state_dir=state_dir) == addr  # starting twice reuses the broker
    assert (state_dir / "broker.pid").read_text() == pid

    assert lb.stop(state_dir) is True
    assert lb.status(state_dir) is None
    assert not (state_dir / "broker.pid").exists()
    assert lb.stop(state_dir) is False  # harmless when not running


def test_restart_keeps_data_and_address(lb: ModuleType, state_dir: Path) -> None:
    addr = lb.start(state_dir=state_dir)
    _produce(addr, "wirenews.persisted", b"kept")  # auto-created topic
    lb.stop(state_dir)

    assert lb.start(state_dir=state_dir) == addr  # previous port reused when free
    assert _consume_one(addr, "wirenews.persisted") == b"kept"


def test_death_during_startup_reports_log_tail(lb: ModuleType, state_dir: Path) -> None:
    # A log dir claiming another node id makes the broker exit right after launch.
    data = state_dir / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text(
        "version=1\nnode.id=7\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\n"
        "directory.id=AAAAAAAAAAAAAAAAAAAAAQ\n"
    )
    with pytest.raises(lb.LocalBrokerError, match="exited during start-up") as excinfo:
        lb.start(state_dir=state_dir, timeout=60)
    assert "node id" in str(excinfo.value)  # the tail of broker.log is in the message
    assert lb.status(state_dir) is None
    assert not (state_dir / "broker.pid").exists()
