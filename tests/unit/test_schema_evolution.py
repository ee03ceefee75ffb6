"""Backward compatibility: new readers read old files; old readers read new files.

The released schemas are in tests/data/released_schemas, one folder per release that
changed them (each schema standalone, Origin inlined).
"""

import copy
import io
import json
from pathlib import Path

import avro.compatibility
import avro.datafile
import avro.io
import avro.schema
import fastavro
import pytest

from pipeline.io.avro import to_avro
from pipeline.read import avro_files, read_files
from schemas import load_schema, schema_text
from tests.conftest import REPO
from tests.unit.test_schemas import ARTICLE

CURRENT = json.loads(schema_text("Article"))


def evolved() -> dict:
    """Tomorrow's schema: today's plus a field with a default."""
    schema = copy.deepcopy(CURRENT)
    schema["fields"].append({"name": "sentiment", "type": ["null", "double"], "default": None})
    return schema


def older() -> dict:
    """Yesterday's schema: today's without the fields added since (all have defaults)."""
    schema = copy.deepcopy(CURRENT)
    dropped = {"entities", "quotes", "dedup", "byline"}
    schema["fields"] = [f for f in schema["fields"] if f["name"] not in dropped]
    return schema


def write(schema: dict, records: list[dict]) -> bytes:
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), records)
    return buffer.getvalue()


def today() -> dict:
    return to_avro(ARTICLE, load_schema("Article"))


def test_new_reader_reads_old_files() -> None:
    data = write(CURRENT, [today()])
    [read] = fastavro.reader(io.BytesIO(data), reader_schema=fastavro.parse_schema(evolved()))
    assert read["sentiment"] is None
    assert read["id"] == "a-1"
    reader = avro.io.DatumReader(readers_schema=avro.schema.parse(json.dumps(evolved())))
    with avro.datafile.DataFileReader(io.BytesIO(data), reader) as apache:
        assert next(iter(apache))["sentiment"] is None


def test_old_reader_reads_new_files() -> None:
    data = write(evolved(), [{**today(), "sentiment": 0.7}])
    [read] = fastavro.reader(io.BytesIO(data), reader_schema=load_schema("Article"))
    assert "sentiment" not in read
    assert read["entities"][0]["canonical"] == "Mark Rutte"


def test_wirenews_read_fills_todays_fields_in_yesterdays_files(tmp_path: Path) -> None:
    yesterday = {
        k: v for k, v in today().items() if k not in {"entities", "quotes", "dedup", "byline"}
    }
    (tmp_path / "articles-old.avro").write_bytes(write(older(), [yesterday]))
    [record] = list(read_files(avro_files(str(tmp_path))))
    assert record.writer_schema["fields"][-1]["name"] == "content_hash"
    assert (record.datum["entities"], record.datum["quotes"], record.datum["dedup"]) == (
        [],
        [],
        None,
    )
    assert record.datum["byline"] is None
    assert record.datum["headline"] == "Ministers agree"


RELEASED = sorted((REPO / "tests" / "data" / "released_schemas").glob("*/io.wirenews.*.avsc"))


@pytest.mark.parametrize("released", RELEASED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_todays_schemas_and_every_released_one_read_each_others_files(released: Path) -> None:
    """Checked by Apache's Avro, against the schemas as each release that changed them had them.

    The tests above show the rules work on a schema made for them; this one catches a
    change to ``schemas/`` that breaks them (a field without a default, a narrowed type).
    A release that changes a schema adds its own folder here, named by its commit.
    """
    checker = avro.compatibility.ReaderWriterCompatibilityChecker()
    old = avro.schema.parse(released.read_text())
    new = avro.schema.parse(schema_text(released.stem.rsplit(".", 1)[-1]))
    for reader, writer in ((new, old), (old, new)):
        result = checker.get_compatibility(reader, writer)
        assert result.compatibility is avro.compatibility.SchemaCompatibilityType.compatible, (
            result.messages
        )


def test_every_schema_has_a_released_copy() -> None:
    names = {p.name for p in (REPO / "schemas").glob("*.avsc")} - {"io.wirenews.Origin.avsc"}
    assert names <= {p.name for p in RELEASED}
