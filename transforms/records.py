"""Typed records that flow through the pipeline.

Frozen dataclasses inside the pipeline; plain dicts only at the Avro edge
(:mod:`pipeline.io.avro`), whose ``.avsc`` files are the one definition of
what leaves it. ``tests/unit/test_schemas.py`` keeps the two in step.

Example:
    origin = Origin.file("seeds/a.jsonl", line=3)
    raw = RawRecord(payload=b"{...}", origin=origin, media_type=MediaType.JSON)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Article",
    "DeadLetter",
    "Dedup",
    "Duplicate",
    "Entity",
    "MediaType",
    "Origin",
    "Quote",
    "RawRecord",
]


class MediaType(str, enum.Enum):
    """How a raw payload is to be parsed."""

    TEXT = "text/plain"
    JSON = "application/json"


@dataclass(frozen=True)
class Origin:
    """Where a record came from: a file (and line), or a Kafka coordinate."""

    kind: str
    path: str | None = None
    line: int | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    @classmethod
    def file(cls, path: str, line: int | None = None) -> Origin:
        """A record read from a file; ``line`` is 1-based for JSON Lines."""
        return cls(kind="file", path=path, line=line)

    @classmethod
    def kafka(cls, topic: str, partition: int, offset: int) -> Origin:
        """A record read from ``topic[partition]@offset``."""
        return cls(kind="kafka", topic=topic, partition=partition, offset=offset)

    def __str__(self) -> str:
        if self.kind == "kafka":
            return f"{self.topic}[{self.partition}]@{self.offset}"
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)


@dataclass(frozen=True)
class RawRecord:
    """Undecoded input: the bytes of one article as the source gave them."""

    payload: bytes
    origin: Origin
    media_type: MediaType
    key: str | None = None


@dataclass(frozen=True)
class Entity:
    """A named entity, with its canonical name, as found in the body."""

    text: str
    label: str
    canonical: str
    start: int
    end: int
    mentions: int = 1


@dataclass(frozen=True)
class Quote:
    """A quotation and who said it."""

    text: str
    start: int
    end: int
    speaker: str | None = None
    speaker_label: str | None = None
    cue: str | None = None
    kind: str = "direct"
    confidence: float = 1.0


@dataclass(frozen=True)
class Dedup:
    """The article's duplicate cluster; ``duplicate_of`` is None for the original."""

    cluster_id: str
    duplicate_of: str | None = None
    similarity: float | None = None
    method: str | None = None


@dataclass(frozen=True)
class Article:
    """A clean article; later steps fill ``entities``, ``quotes`` and ``dedup``."""

    id: str
    origin: Origin
    url: str | None
    source: str | None
    published_at: datetime | None
    ingested_at: datetime
    headline: str | None
    dateline: str | None
    byline: str | None
    language: str
    body: str
    word_count: int
    content_hash: str
    entities: tuple[Entity, ...] = field(default=())
    quotes: tuple[Quote, ...] = field(default=())
    dedup: Dedup | None = None


@dataclass(frozen=True)
class Duplicate:
    """The small record of an article found to copy an earlier one."""

    id: str
    origin: Origin
    url: str | None
    source: str | None
    published_at: datetime | None
    headline: str | None
    duplicate_of: str
    cluster_id: str
    similarity: float
    method: str


@dataclass(frozen=True)
class DeadLetter:
    """An input that could not become an article, kept with the reason.

    ``payload`` holds the raw bytes, cut to a bounded prefix for oversized
    records; ``payload_size`` is always the full size.
    """

    origin: Origin
    stage: str
    error_type: str
    error_message: str
    payload: bytes
    payload_size: int
    failed_at: datetime
