"""What the Kafka benches share: a local broker, and kafka-python under its own name.

``bench/kafka.py`` is named as the benchmarks' README asks, which shadows the
``kafka`` package for scripts run from this folder; kafka-python's classes are
imported here with this folder off the path.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
_HERE = Path(__file__).resolve().parent


def _kafka_python() -> ModuleType:
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
    try:
        return importlib.import_module("kafka")
    finally:
        sys.path[:] = saved


_KAFKA = _kafka_python()
KafkaProducer = _KAFKA.KafkaProducer
KafkaAdminClient = _KAFKA.KafkaAdminClient
NewTopic = _KAFKA.admin.NewTopic


def local_broker() -> ModuleType:
    """deploy/kafka/local_broker.py, a stdlib module loaded by path."""
    spec = importlib.util.spec_from_file_location(
        "local_broker", REPO / "deploy" / "kafka" / "local_broker.py"
    )
    if spec is None or spec.loader is None:
        missing = "deploy/kafka/local_broker.py is missing"
        raise ImportError(missing)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
