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


def load_deploy_module(relative: str) -> ModuleType:
    """A stdlib-only helper under deploy/, loaded by path (deploy/ is not a package)."""
    name = "wirenews_deploy_" + relative.replace("/", "_").removesuffix(".py")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "deploy" / relative)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_local_broker() -> ModuleType:
    """deploy/kafka/local_broker.py."""
    return load_deploy_module("kafka/local_broker.py")


def load_local_registry() -> ModuleType:
    """deploy/registry/local_registry.py."""
    return load_deploy_module("registry/local_registry.py")


def load_local_cluster() -> ModuleType:
    """deploy/flink/local_cluster.py (it needs the project's virtualenv, which tests run in)."""
    return load_deploy_module("flink/local_cluster.py")


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


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real schema registry (Apicurio, in memory) for the session: its ccompat API URL.

    Apicurio 3 needs Java 21+; where only Java 17 is found, its 2.6 line serves.
    """
    registry = load_local_registry()
    state = tmp_path_factory.mktemp("registry")
    try:
        try:
            url = registry.start(state_dir=state, timeout=240.0)
        except registry.LocalRegistryError as exc:
            if "Java" not in str(exc):
                raise
            url = registry.start(state_dir=state, timeout=240.0, version="2.6.13.Final")
    except Exception as exc:
        pytest.fail(f"the local schema registry did not start: {exc}", pytrace=False)
    yield url
    registry.stop(state)


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
