"""Integration fixtures: the real Kafka broker, unique topics, and a way to produce to them."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from tests.conftest import REPO

BROKER_MODULE = REPO / "deploy" / "kafka" / "local_broker.py"


def load_local_broker() -> ModuleType:
    """deploy/kafka/local_broker.py, loaded by path (deploy/ is not a package)."""
    name = "wirenews_deploy_local_broker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BROKER_MODULE)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real broker: the one named by WIRENEWS_KAFKA_BOOTSTRAP, or one started for the session.

    A broker that cannot start fails the tests that need it, loudly.
    """
    given = os.environ.get("WIRENEWS_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    broker = load_local_broker()
    state = tmp_path_factory.mktemp("kafka")
    try:
        address = broker.start(state_dir=state, timeout=180.0)
    except Exception as exc:
        pytest.fail(f"the local Kafka broker did not start: {exc}", pytrace=False)
    yield address
    broker.stop(state)


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name of this test's own."""
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", request.node.name)[:80]
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def create_topic(kafka_bootstrap: str) -> Callable[[str, int], None]:
    def create(name: str, partitions: int = 1) -> None:
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            admin.close()

    return create


@pytest.fixture
def produce(kafka_bootstrap: str) -> Iterator[Callable[..., None]]:
    """Send raw messages with kafka-python, as any other producer would."""
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")

    def send(
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        producer.send(
            topic,
            value=value,
            key=key,
            partition=partition,
            timestamp_ms=timestamp_ms,
            headers=headers,
        ).get(timeout=30)

    yield send
    producer.close()
