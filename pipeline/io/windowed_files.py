"""Streaming output: one Avro file per window and source partition, renamed into place.

Each file is written under a hidden temporary name, flushed and synced, then
renamed, so a reader never sees a partial file under a final name. The name
holds the window, the source partition and the first offset in the file, so a
replay of the same offsets rewrites the same file instead of adding a copy,
and a replay from a later offset can never overwrite records it did not read.
Every written record is acknowledged downstream, which is what lets the Kafka
offsets be committed only once records are durable.

Example:
    acks = articles | WriteWindowedAvro(out, "articles", "Article", window_seconds=60)
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
import fastavro
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import FixedWindows, IntervalWindow

from pipeline.io.avro import AVRO_CODEC, AVRO_SUFFIX, to_avro
from schemas import load_schema
from transforms.metrics import StepMetrics
from transforms.records import Origin

__all__ = ["WriteWindowedAvro", "source_key", "window_file_name", "write_atomically"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def source_key(origin: Origin) -> str:
    """The source partition a record came from: ``topic/partition``, or its file."""
    if origin.kind == "kafka":
        return f"{origin.topic}/{origin.partition}"
    return str(origin.path)


def window_file_name(prefix: str, window: IntervalWindow, key: str, first_offset: int) -> str:
    """``<prefix>-<start>-<end>-<source>-<first offset>.avro``, all in UTC."""
    start, end = (
        datetime.fromtimestamp(float(t), tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for t in (window.start, window.end)
    )
    source = _UNSAFE.sub("_", key).strip("_")
    return f"{prefix}-{start}-{end}-{source}-{first_offset:012d}{AVRO_SUFFIX}"


def write_atomically(path: str, schema: dict[str, Any], records: Iterable[dict[str, Any]]) -> None:
    """Write an Avro file to a hidden temporary name, sync it, then rename it to ``path``."""
    folder, name = os.path.split(path)
    temporary = FileSystems.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    if FileSystems.get_scheme(path) is None:
        os.makedirs(folder, exist_ok=True)
        with open(temporary, "wb") as file:
            fastavro.writer(file, schema, records, codec=AVRO_CODEC)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return
    with FileSystems.create(temporary) as file:
        fastavro.writer(file, schema, records, codec=AVRO_CODEC)
    FileSystems.rename([temporary], [path])


class _WriteWindowFileFn(beam.DoFn):
    def __init__(self, folder: str, prefix: str, schema_name: str, step: str) -> None:
        self._folder = folder
        self._prefix = prefix
        self._schema_name = schema_name
        self._step = step

    def setup(self) -> None:
        self._schema = load_schema(self._schema_name)
        self._metrics = StepMetrics(self._step)

    def process(
        self,
        keyed: tuple[str, Iterable[Any]],
        window: IntervalWindow = beam.DoFn.WindowParam,
    ) -> Iterator[tuple[str, tuple[int, ...]]]:
        key, records = keyed
        # One record per input coordinate: a runner that re-runs a bundle (Prism re-fires the
        # timers of a split bundle) may deliver a record twice; the file holds it once.
        unique = {r.origin: r for r in records}.values()
        ordered = sorted(unique, key=lambda r: (r.origin.offset or 0, r.origin.line or 0))
        first = ordered[0].origin.offset or ordered[0].origin.line or 0
        path = FileSystems.join(self._folder, window_file_name(self._prefix, window, key, first))
        self._metrics.received(len(ordered))
        write_atomically(path, self._schema, (to_avro(r, self._schema) for r in ordered))
        self._metrics.ok(len(ordered))
        offsets = tuple(r.origin.offset for r in ordered if r.origin.offset is not None)
        if offsets:
            yield key, offsets


class WriteWindowedAvro(beam.PTransform):
    """Records → Avro files per window and source; outputs ``(source, offsets written)``."""

    def __init__(
        self, folder: str, prefix: str, schema_name: str, *, window_seconds: int, counter: str
    ) -> None:
        super().__init__()
        if window_seconds <= 0:
            message = f"window_seconds must be positive, got {window_seconds}"
            raise ValueError(message)
        load_schema(schema_name)  # fail at construction if it is missing
        self._folder = folder
        self._prefix = prefix
        self._schema_name = schema_name
        self._window_seconds = window_seconds
        self._counter = counter

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        """Window, group by source partition, write one file per group."""
        return (
            records
            | "Window" >> beam.WindowInto(FixedWindows(self._window_seconds))
            | "KeyBySource" >> beam.Map(lambda record: (source_key(record.origin), record))
            | "GroupBySource" >> beam.GroupByKey()
            | "WriteFiles"
            >> beam.ParDo(
                _WriteWindowFileFn(self._folder, self._prefix, self._schema_name, self._counter)
            )
        )
