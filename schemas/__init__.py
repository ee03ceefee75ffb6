"""The Avro schemas of everything the pipeline writes, loaded from the ``.avsc`` files here.

The ``.avsc`` files are the single definition of the output. Shared named types
(``io.wirenews.Origin``) live in their own file and are resolved by fastavro
when a schema that references them is loaded.

Example:
    from schemas import load_schema
    schema = load_schema("Article")   # parsed, ready for fastavro.writer
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import fastavro.schema

__all__ = ["NAMESPACE", "load_schema"]

NAMESPACE = "io.wirenews"


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed schema of record ``name`` (e.g. ``"Article"``)."""
    path = resources.files(__name__) / f"{NAMESPACE}.{name}.avsc"
    with resources.as_file(path) as file:
        if not file.is_file():
            message = f"no Avro schema named {name!r} in {file.parent}"
            raise FileNotFoundError(message)
        return fastavro.schema.load_schema(str(file))
