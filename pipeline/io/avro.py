"""Records as Avro data, validated against the ``.avsc`` schemas; the files' codec and suffix.

Free of Beam: ``wirenews read`` uses it too. The sinks are
:class:`pipeline.io.avro_sink.WriteAvro` (batch) and
:mod:`pipeline.io.windowed_files` (streaming).

Example:
    datum = to_avro(article, load_schema("Article"))
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastavro.validation import ValidationError, validate

from transforms.errors import SchemaViolation

__all__ = ["AVRO_CODEC", "AVRO_SUFFIX", "to_avro"]

# deflate: every Avro implementation reads it (avrocat's C build included).
AVRO_CODEC = "deflate"
AVRO_SUFFIX = ".avro"


def to_avro(record: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """The Avro datum of a record dataclass, checked strictly against ``schema``.

    Raises:
        SchemaViolation: the record does not fit (a bug: records are built to fit).
    """
    datum = dataclasses.asdict(record)
    try:
        validate(datum, schema, raise_errors=True, strict=True)
    except ValidationError as exc:
        message = f"{type(record).__name__} does not fit schema {schema['name']}: {exc}"
        raise SchemaViolation(message) from exc
    return datum
