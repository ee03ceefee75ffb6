import dataclasses
import io
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import avro.datafile
import avro.io
import fastavro
import pytest

from pipeline.io.avro import AVRO_CODEC, to_avro
from schemas import load_schema
from transforms.errors import SchemaViolation
from transforms.records import Article, DeadLetter, Dedup, Duplicate, Entity, Origin, Quote

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
T = datetime(2024, 11, 26, 9, 30, 15, 123000, tzinfo=timezone.utc)

ARTICLE = Article(
    id="a-1",
    origin=Origin.kafka("wire", 2, 1234),
    url="https://example.test/a-1",
    source="Test Wire",
    published_at=T,
    ingested_at=T,
    headline="Ministers agree",
    dateline="LONDON",
    byline="Jane Roe, Test Wire",
    language="en",
    body="“We agree,” Rutte said.",
    word_count=4,
    content_hash="0" * 32,
    entities=(Entity("Rutte", "PERSON", "Mark Rutte", 12, 17, mentions=2),),
    quotes=(Quote("We agree,", 1, 10, speaker="Mark Rutte", speaker_label="PERSON", cue="said"),),
    dedup=Dedup("a-0", duplicate_of="a-0", similarity=0.93, method="near"),
)
DEAD_LETTER = DeadLetter(
    origin=Origin.file("/in/bad.json"),
    stage="parse",
    error_type="MalformedJson",
    error_message="not JSON",
    payload=b"\xff{",
    payload_size=2,
    failed_at=T,
)


def schema_fields(schema: dict) -> list[str]:
    return [field["name"] for field in schema["fields"]]


def named(schema: dict, name: str) -> dict:
    for field in schema["fields"]:
        node = field["type"]
        for candidate in node if isinstance(node, list) else [node]:
            inner = (
                candidate["items"]
                if isinstance(candidate, dict) and candidate.get("type") == "array"
                else candidate
            )
            if isinstance(inner, dict) and inner.get("name", "").endswith(name):
                return inner
    raise LookupError(name)


def test_a_schema_has_one_text_in_every_process() -> None:
    """Topics and registries get the same text from every worker, whatever its hash seed."""
    show = "from schemas import schema_text; print(schema_text('DeadLetter'))"
    texts = {
        subprocess.run(
            [sys.executable, "-c", show],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(texts) == 1


def test_every_schema_file_loads() -> None:
    files = sorted(SCHEMA_DIR.glob("*.avsc"))
    assert [f.name for f in files] == [
        "io.wirenews.Article.avsc",
        "io.wirenews.DeadLetter.avsc",
        "io.wirenews.Duplicate.avsc",
        "io.wirenews.Origin.avsc",
    ]
    for file in files:
        assert fastavro.schema.load_schema(str(file))["name"].startswith("io.wirenews.")


@pytest.mark.parametrize(
    ("record_type", "schema_name", "nested"),
    [
        (Article, "Article", None),
        (DeadLetter, "DeadLetter", None),
        (Duplicate, "Duplicate", None),
        (Origin, "Article", "Origin"),
        (Entity, "Article", "Entity"),
        (Quote, "Article", "Quote"),
        (Dedup, "Article", "Dedup"),
    ],
)
def test_records_and_schemas_have_the_same_fields(
    record_type: type, schema_name: str, nested: str | None
) -> None:
    schema = load_schema(schema_name)
    if nested:
        schema = named(schema, nested)
    assert sorted(f.name for f in dataclasses.fields(record_type)) == sorted(schema_fields(schema))


def test_every_article_field_added_after_the_core_has_a_default() -> None:
    required = {"id", "origin", "ingested_at", "language", "body", "word_count", "content_hash"}
    for field in load_schema("Article")["fields"]:
        assert field["name"] in required or "default" in field, field["name"]


def round_trip_with_apache_avro(schema_name: str, datum: dict) -> dict:
    buffer = io.BytesIO()
    fastavro.writer(buffer, load_schema(schema_name), [datum], codec=AVRO_CODEC)
    buffer.seek(0)
    with avro.datafile.DataFileReader(buffer, avro.io.DatumReader()) as reader:
        [read] = list(reader)
    return read


def test_article_round_trip_through_apache_avro() -> None:
    read = round_trip_with_apache_avro("Article", to_avro(ARTICLE, load_schema("Article")))
    assert read["id"] == "a-1"
    assert read["origin"] == {
        "kind": "kafka",
        "path": None,
        "line": None,
        "topic": "wire",
        "partition": 2,
        "offset": 1234,
    }
    assert read["published_at"] == T
    assert read["entities"][0]["canonical"] == "Mark Rutte"
    assert read["quotes"][0]["speaker"] == "Mark Rutte"
    assert read["dedup"] == {
        "cluster_id": "a-0",
        "duplicate_of": "a-0",
        "similarity": 0.93,
        "method": "near",
    }


def test_dead_letter_round_trip_through_apache_avro() -> None:
    read = round_trip_with_apache_avro(
        "DeadLetter", to_avro(DEAD_LETTER, load_schema("DeadLetter"))
    )
    assert read["payload"] == b"\xff{"
    assert read["origin"]["path"] == "/in/bad.json"
    assert read["error_type"] == "MalformedJson"


def test_a_record_that_does_not_fit_is_refused() -> None:
    broken = dataclasses.replace(ARTICLE, word_count="many")
    with pytest.raises(SchemaViolation, match=r"Article does not fit schema io\.wirenews\.Article"):
        to_avro(broken, load_schema("Article"))
