"""``wirenews read``: print what the pipeline wrote, from Avro files or a Kafka topic.

Files are read with the current schemas as reader schemas, so files written by
older versions (fewer fields) come out with today's fields at their defaults.

Example:
    for record in read_records("out/"):
        print(to_json_line(record))
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fastavro
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from pipeline.io.avro import AVRO_SUFFIX
from pipeline.io.kafka_avro import (
    SCHEMA_FINGERPRINT_HEADER,
    SchemaRegistry,
    decode_body,
    schemas_topic,
    unframe_confluent,
)
from pipeline.io.kafka_client import KafkaSettings, KafkaTopic, consumer, is_kafka_url
from pipeline.io.paths import is_local, match_files, must_exist, open_file
from schemas import load_schema, short_name
from transforms.errors import WirenewsError

__all__ = [
    "Record",
    "UnreadableFiles",
    "avro_files",
    "read_records",
    "table_lines",
    "to_json_line",
    "writer_schemas",
]

LOGGER = logging.getLogger(__name__)
_NOT_OUTPUT = (
    "not the pipeline's output: a message with neither the wirenews-schema-fingerprint header "
    "nor a schema registry's framing (an input topic, fed with wirenews feed?)"
)
# What fastavro raises for a file that is not Avro, or is cut short (or the file system).
_UNREADABLE = (ValueError, EOFError, OSError)
# How many unreadable files the final error names.
_NAMED_FILES = 3
_TABLE_HEADLINE = 48
_TABLE_MESSAGE = 60
_POLL_TIMEOUT_MS = 1000


@dataclass(frozen=True)
class Record:
    """One record read back, with the schema it was written with."""

    datum: dict[str, Any]
    writer_schema: dict[str, Any]


def avro_files(source: str) -> list[str]:
    """The Avro files a source names: a file, a folder (recursively) or a glob.

    A file named on its own is read whatever its name ends with.
    """
    local = is_local(source)
    must_exist(source)
    if local and os.path.isfile(source):
        return [os.path.abspath(source)]
    folder = source.endswith("/") or (local and os.path.isdir(source))
    matched = match_files(os.path.abspath(source) if local else source, folder=folder)
    files = sorted(
        p for p in matched if p.endswith(AVRO_SUFFIX) and not os.path.basename(p).startswith(".")
    )
    if not files:
        message = f"no Avro files in {source!r}"
        raise WirenewsError(message)
    return files


def _reader_schema(writer_schema: dict[str, Any]) -> dict[str, Any] | None:
    name = short_name(str(writer_schema.get("name", "")))
    try:
        return load_schema(name) if name else None
    except FileNotFoundError:
        return None


class UnreadableFiles(WirenewsError):
    """Some files could not be read to their end; the others' records came through."""


def read_files(paths: Iterable[str]) -> Iterator[Record]:
    """Every record of every file, resolved to the current schema where it is ours.

    A file that is not Avro, or is cut short, does not stop the others: each is
    named in the log, and the error raised once all were read lists them.

    Raises:
        WirenewsError: some file could not be read (to its end).
    """
    unreadable: list[str] = []
    for path in paths:
        try:
            with open_file(path) as file:
                writer_schema = fastavro.reader(file).writer_schema
                file.seek(0)  # the header again, now read with today's schema as the reader's
                for datum in fastavro.reader(file, reader_schema=_reader_schema(writer_schema)):
                    yield Record(datum, writer_schema)
        except (*_UNREADABLE, fastavro.read.SchemaResolutionError) as exc:
            LOGGER.error("cannot read %s: %s", path, _why_unreadable(exc))
            unreadable.append(path)
    if unreadable:
        shown = ", ".join(unreadable[:_NAMED_FILES]) + (", ..." * (len(unreadable) > _NAMED_FILES))
        message = f"{len(unreadable)} of the files could not be read to their end: {shown}"
        raise UnreadableFiles(message)


def _why_unreadable(error: Exception) -> str:
    if isinstance(error, EOFError):
        return "it ends in the middle of a record (cut short, or still being written?)"
    if "cannot read header" in str(error):
        return "not an Avro container file"
    return f"{type(error).__name__}: {error}"


def read_topic(
    settings: KafkaSettings, topic: str, *, registry_url: str | None, follow: bool
) -> Iterator[Record]:
    """Every message of ``topic`` from the beginning, decoded; with ``follow``, then more."""
    schemas = _SchemaLookup(settings, topic, registry_url)
    for message in _messages(settings, topic, follow=follow):
        yield schemas.decode(message.value, dict(message.headers or ()))


def _messages(settings: KafkaSettings, topic: str, *, follow: bool) -> Iterator[ConsumerRecord]:
    """The topic's messages from the beginning to its end now (or on, with ``follow``)."""
    client = consumer(settings)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(client.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            message = f"topic {topic!r} does not exist"
            raise WirenewsError(message)
        client.assign(partitions)
        client.seek_to_beginning()
        ends = client.end_offsets(partitions)
        while follow or any(client.position(tp) < ends[tp] for tp in partitions):
            for messages in client.poll(timeout_ms=_POLL_TIMEOUT_MS).values():
                yield from messages
    finally:
        client.close()


class _SchemaLookup:
    """Finds the writer schema of a message: by registry id, or by fingerprint header."""

    def __init__(self, settings: KafkaSettings, topic: str, registry_url: str | None) -> None:
        self._settings = settings
        self._topic = topic
        self._registry = SchemaRegistry(registry_url) if registry_url else None
        self._by_id: dict[int, dict[str, Any]] = {}
        self._by_fingerprint: dict[str, dict[str, Any]] = {}

    def decode(self, value: bytes, headers: dict[str, bytes]) -> Record:
        fingerprint = headers.get(SCHEMA_FINGERPRINT_HEADER)
        if fingerprint is not None:
            writer = self._published(fingerprint.decode())
            body = value
        else:
            schema_id, body = unframe_confluent(value, not_framed=_NOT_OUTPUT)
            if self._registry is None:
                message = "messages carry registry ids: pass --schema-registry URL"
                raise WirenewsError(message)
            if schema_id not in self._by_id:
                self._by_id[schema_id] = fastavro.parse_schema(
                    json.loads(self._registry.schema(schema_id))
                )
            writer = self._by_id[schema_id]
        return Record(decode_body(body, writer, _reader_schema(writer)), writer)

    def _published(self, fingerprint: str) -> dict[str, Any]:
        if fingerprint not in self._by_fingerprint:
            for message in _messages(self._settings, schemas_topic(self._topic), follow=False):
                parsed = fastavro.parse_schema(json.loads(message.value))
                self._by_fingerprint[message.key.decode()] = parsed
        if fingerprint not in self._by_fingerprint:
            message = f"schema {fingerprint} is not in {schemas_topic(self._topic)}"
            raise WirenewsError(message)
        return self._by_fingerprint[fingerprint]


def read_records(
    source: str,
    *,
    registry_url: str | None = None,
    follow: bool = False,
    kafka_config: Iterable[str] = (),
    password_env: str | None = None,
) -> Iterator[Record]:
    """Records from a folder, file or glob of Avro files, or from ``kafka://HOST:PORT/TOPIC``."""
    if is_kafka_url(source):
        topic = KafkaTopic.parse(source)
        settings = KafkaSettings.from_flags(topic.bootstrap, kafka_config, password_env)
        return read_topic(settings, topic.topic, registry_url=registry_url, follow=follow)
    return read_files(avro_files(source))


def writer_schemas(source: str, **kafka: Any) -> list[dict[str, Any]]:
    """The distinct writer schemas of a source, in order of appearance.

    For files, from their headers (empty files count too); for a topic, from its
    messages (``kafka`` takes the keyword arguments of :func:`read_records`).
    """
    if is_kafka_url(source):
        schemas = (record.writer_schema for record in read_records(source, **kafka))
    else:
        schemas = (_header_schema(path) for path in avro_files(source))
    seen: dict[str, dict[str, Any]] = {}
    for schema in schemas:
        seen.setdefault(json.dumps(schema, sort_keys=True), schema)
    return list(seen.values())


def _header_schema(path: str) -> dict[str, Any]:
    try:
        with open_file(path) as file:
            return fastavro.reader(file).writer_schema
    except _UNREADABLE as exc:
        message = f"cannot read {path}: {_why_unreadable(exc)}"
        raise WirenewsError(message) from exc


def jsonable(value: Any) -> Any:
    """JSON-ready: times as ISO 8601, bytes as base64."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def to_json_line(record: Record) -> str:
    """One record as a line of JSON (for jq)."""
    return json.dumps(jsonable(record.datum), ensure_ascii=False)


def table_lines(records: Iterable[Record]) -> Iterator[str]:
    """A compact table for people: articles, or dead letters."""
    header_done = None
    for record in records:
        datum = record.datum
        is_article = "headline" in datum
        if header_done is not is_article:
            header_done = is_article
            yield (
                f"{'id':<20} {'published':<16} {'source':<22} {'headline':<{_TABLE_HEADLINE}} "
                f"{'ents':>4} {'qts':>3} duplicate of"
                if is_article
                else f"{'origin':<40} {'stage':<9} {'error':<16} message"
            )
        yield _article_row(datum) if is_article else _dead_letter_row(datum)


def _article_row(datum: dict[str, Any]) -> str:
    published = datum.get("published_at")  # not when it was read: that would look like news
    when = published.strftime("%Y-%m-%d %H:%M") if published else "-"
    duplicate_of = datum.get("duplicate_of") or (datum.get("dedup") or {}).get("duplicate_of")
    return (
        f"{_cut(datum['id'], 20):<20} {when:<16} {_cut(datum.get('source') or '-', 22):<22} "
        f"{_cut(datum.get('headline') or '-', _TABLE_HEADLINE):<{_TABLE_HEADLINE}} "
        f"{len(datum.get('entities') or ()):>4} {len(datum.get('quotes') or ()):>3} "
        f"{duplicate_of or '-'}"
    )


def _dead_letter_row(datum: dict[str, Any]) -> str:
    origin = datum["origin"]
    if origin["kind"] == "kafka":
        where = f"{origin['topic']}[{origin['partition']}]@{origin['offset']}"
    else:
        where = f"{origin['path']}" + (f":{origin['line']}" if origin.get("line") else "")
    return (
        f"{_cut_left(where, 40):<40} {datum['stage']:<9} {_cut(datum['error_type'], 16):<16} "
        f"{_cut(datum['error_message'], _TABLE_MESSAGE)}"
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _cut_left(text: str, width: int) -> str:
    """Keep the end, where a path's file name is."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]
