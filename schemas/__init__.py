"""The Avro schemas of everything the pipeline writes, loaded from the ``.avsc`` files here.

The ``.avsc`` files are the single definition of the output. Shared named types
(``io.wirenews.Origin``) live in their own file and are resolved by fastavro
when a schema that references them is loaded.

Example:
    from schemas import load_schema, schema_text
    schema = load_schema("Article")   # parsed, ready for fastavro.writer
    schema_text("Article")            # standalone JSON, for registries and topics
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro.schema

__all__ = ["NAMESPACE", "fingerprint", "load_schema", "schema_text", "short_name"]

NAMESPACE = "io.wirenews"


def _path(name: str) -> Path:
    path = Path(str(resources.files(__name__) / f"{NAMESPACE}.{name}.avsc"))
    if not path.is_file():
        message = f"no Avro schema named {name!r} in {path.parent}"
        raise FileNotFoundError(message)
    return path


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed schema of record ``name`` (e.g. ``"Article"``)."""
    return fastavro.schema.load_schema(str(_path(name)))


@functools.cache
def schema_text(name: str) -> str:
    """Schema ``name`` as standalone JSON (named types inlined), docs and defaults kept.

    The same text in every process: fastavro's inlining orders keys by the hash seed.
    """
    raw = fastavro.schema.load_schema(str(_path(name)), _write_hint=False)
    return json.dumps(fastavro.schema.expand_schema(raw), separators=(",", ":"), sort_keys=True)


def fingerprint(schema: dict[str, Any] | str) -> str:
    """CRC-64-AVRO fingerprint (hex) of a schema's parsing canonical form."""
    parsed = fastavro.parse_schema(json.loads(schema) if isinstance(schema, str) else schema)
    return fastavro.schema.fingerprint(
        fastavro.schema.to_parsing_canonical_form(parsed), "CRC-64-AVRO"
    )


def short_name(full_name: str) -> str | None:
    """``"Article"`` for ``"io.wirenews.Article"``; None for a schema not of this project."""
    namespace, _, name = full_name.rpartition(".")
    return name if namespace == NAMESPACE else None
