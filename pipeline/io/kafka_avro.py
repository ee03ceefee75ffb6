"""Avro on Kafka: the two wire formats, a schema registry client, the schemas topic.

- With a schema registry, a value is Confluent-framed: a zero byte, the schema id
  (4 bytes, big-endian), then the Avro body; the schema is registered under the
  subject ``<topic>-value``.
- Without one, a value is the bare Avro body; headers name the schema and its
  CRC-64-AVRO fingerprint, and the schema itself is published once to the
  compacted topic ``<topic>-schemas`` keyed by fingerprint, so a consumer can
  always decode.

Example:
    body = encode_body(schema, datum)
    value = frame_confluent(schema_id, body)        # registry mode
    schema_id, body = unframe_confluent(value)
"""

from __future__ import annotations

import io
import json
import struct
import urllib.error
import urllib.request
from typing import Any

import fastavro

from transforms.errors import WirenewsError

__all__ = [
    "SCHEMA_FINGERPRINT_HEADER",
    "SCHEMA_NAME_HEADER",
    "SchemaRegistry",
    "decode_body",
    "encode_body",
    "frame_confluent",
    "schemas_topic",
    "subject",
    "unframe_confluent",
]

SCHEMA_NAME_HEADER = "wirenews-schema"
SCHEMA_FINGERPRINT_HEADER = "wirenews-schema-fingerprint"
_MAGIC = 0
_HEADER = struct.Struct(">bI")
_REGISTRY_TIMEOUT_SECONDS = 10.0
_REGISTRY_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def subject(topic: str) -> str:
    """The registry subject of a topic's values (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"


def schemas_topic(topic: str) -> str:
    """The compacted topic holding the schemas of ``topic``'s values, by fingerprint."""
    return f"{topic}-schemas"


def encode_body(schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    """The Avro binary encoding of ``datum``, without any framing."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, datum)
    return buffer.getvalue()


def decode_body(
    body: bytes, writer_schema: dict[str, Any], reader_schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Decode an Avro body written with ``writer_schema`` (resolved to ``reader_schema``)."""
    return fastavro.schemaless_reader(io.BytesIO(body), writer_schema, reader_schema)


def frame_confluent(schema_id: int, body: bytes) -> bytes:
    """Zero byte, 4-byte big-endian schema id, Avro body."""
    return _HEADER.pack(_MAGIC, schema_id) + body


def unframe_confluent(
    value: bytes,
    not_framed: str = "not a Confluent-framed Avro value (no zero magic byte and schema id)",
) -> tuple[int, bytes]:
    """The schema id and the Avro body of a Confluent-framed value; else ``not_framed``, raised."""
    if len(value) < _HEADER.size or value[0] != _MAGIC:
        raise WirenewsError(not_framed)
    _magic, schema_id = _HEADER.unpack_from(value)
    return schema_id, value[_HEADER.size :]


class SchemaRegistry:
    """The subject/version API of a Confluent-compatible schema registry, on urllib."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")

    def register(self, subject_name: str, schema: str) -> int:
        """Register ``schema`` (JSON text) under ``subject_name``; its id (the same when known)."""
        answer = self._call("POST", f"/subjects/{subject_name}/versions", {"schema": schema})
        return int(answer["id"])

    def schema(self, schema_id: int) -> str:
        """The schema (JSON text) registered with ``schema_id``."""
        return str(self._call("GET", f"/schemas/ids/{schema_id}")["schema"])

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the registry URL is the user's own
            self._url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": _REGISTRY_CONTENT_TYPE, "Accept": _REGISTRY_CONTENT_TYPE},
        )
        try:
            with urllib.request.urlopen(request, timeout=_REGISTRY_TIMEOUT_SECONDS) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            message = f"schema registry {self._url} refused {method} {path}: {exc.code} {detail}"
            raise WirenewsError(message) from exc
        except (urllib.error.URLError, OSError) as exc:
            message = f"cannot reach the schema registry at {self._url}: {exc}"
            raise WirenewsError(message) from exc
