"""Garbage in: property tests that throw hostile input at the parser and the NLP step's core.

Whatever arrives, the parser either returns an article that the Avro writer accepts, or
refuses it with one of our own errors and a readable reason; it never raises anything else
(which would be a bug that, in a stream, costs a bundle). The NLP core never crashes and
never points an entity outside the body.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.io.avro import to_avro
from pipeline.io.kafka_avro import encode_body
from schemas import load_schema
from transforms.entities import chunks, entity_pipeline, entity_records
from transforms.errors import ArticleError
from transforms.nlp import DEFAULT_MODEL
from transforms.parse import parse_record
from transforms.records import MediaType, Origin, RawRecord

NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)
ARTICLE_SCHEMA = load_schema("Article")
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters wire copy gets wrong: zero-width, bidi controls, BOM, quote marks of every
# kind (unbalanced on purpose), mixed scripts, combining marks, astral symbols.
ODD = (
    "\u200b\u200c\u200d\u2060\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\"'“”‘’«»‹›„‟「」『』"
    "Кремльالقاهرةירושלים北京東京서울ΑθήναΙστανμπούλहिन्दी"
    "e\u0301\u0308\u20dd🙂🇺🇦\U0001d400\u00a0\u2028\u2029\t\n"
)
odd_text = st.text(
    alphabet=st.one_of(st.sampled_from(ODD), st.characters(codec="utf-8")), max_size=400
)
# Text that may hold lone surrogates (only JSON escapes can carry them in).
any_text = st.one_of(odd_text, st.text(max_size=200))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
FIELDS = ("id", "url", "source", "published_at", "headline", "dateline", "byline", "body")
article_documents = st.dictionaries(st.sampled_from(FIELDS), json_values | any_text, max_size=8)
wire_like = st.builds(
    lambda headline, paragraphs: (headline + "\n\n" + "\n\n".join(paragraphs)).encode(
        "utf-8", "surrogatepass"
    ),
    odd_text,
    st.lists(odd_text, min_size=1, max_size=6),
)


def nested(depth: int, opener: str) -> bytes:
    closer = {"[": "]", "{": "}"}[opener]
    inner = '"a":' if opener == "{" else ""
    return ((opener + inner) * depth + "1" + closer * depth).encode()


payloads = st.one_of(
    st.binary(max_size=3000),
    json_values.map(lambda v: json.dumps(v).encode()),
    article_documents.map(lambda d: json.dumps(d).encode()),
    article_documents.map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "replace")),
    wire_like,
    st.integers(1, 100_000).flatmap(lambda n: st.sampled_from([nested(n, "["), nested(n, "{")])),
    st.builds(
        lambda body: json.dumps({"body": body}).encode(), st.sampled_from(["x", "", " ", "\u200b"])
    ),
)


def assert_parses_or_refuses(raw: RawRecord, max_record_bytes: int = 10 * 1024 * 1024) -> None:
    refused: ArticleError | None = None
    try:
        article = parse_record(raw, ingested_at=NOW, max_record_bytes=max_record_bytes)
    except ArticleError as exc:
        refused = exc
    if refused is not None:
        reason = str(refused)
        assert reason.strip(), f"{type(refused).__name__} without a reason"
        assert reason.isprintable(), f"unreadable reason: {reason!r}"
        reason.encode("utf-8")  # a dead letter's message must be writable
        return
    assert article.id.strip()
    assert article.body.strip()
    assert article.word_count >= 0
    # What the parser lets through, the Avro writer accepts (no lone surrogates, right types).
    encode_body(ARTICLE_SCHEMA, to_avro(article, ARTICLE_SCHEMA))


@EXAMPLES
@given(payload=payloads, media=st.sampled_from(list(MediaType)), key=st.none() | odd_text)
def test_the_parser_returns_an_article_or_a_reason_for_any_bytes(
    payload: bytes, media: MediaType, key: str | None
) -> None:
    raw = RawRecord(payload, Origin.kafka("wire", 0, 1), media, key=key or None)
    assert_parses_or_refuses(raw)


@EXAMPLES
@given(body=odd_text, size=st.integers(0, 64))
def test_records_over_the_size_limit_are_refused_whatever_they_hold(body: str, size: int) -> None:
    payload = json.dumps({"body": body}).encode()
    raw = RawRecord(payload, Origin.file("x.json"), MediaType.JSON)
    if len(payload) > size:
        with pytest.raises(ArticleError, match="over the limit"):
            parse_record(raw, ingested_at=NOW, max_record_bytes=size)
    else:
        assert_parses_or_refuses(raw, max_record_bytes=size)


def test_huge_and_tiny_articles_parse() -> None:
    tiny = RawRecord(b'{"body": "Yes."}', Origin.file("t.json"), MediaType.JSON)
    assert parse_record(tiny, ingested_at=NOW).body == "Yes."
    paragraph = "The harbour board met again on Tuesday to discuss the budget. " * 40
    huge = json.dumps({"id": "huge", "body": "\n\n".join([paragraph] * 1500)}).encode()
    assert len(huge) > 3_000_000
    article = parse_record(RawRecord(huge, Origin.file("h.json"), MediaType.JSON), ingested_at=NOW)
    assert article.word_count > 500_000


@pytest.fixture(scope="module")
def nlp():
    return entity_pipeline(DEFAULT_MODEL)


@EXAMPLES
@given(body=st.lists(odd_text, min_size=1, max_size=8).map("\n\n".join), limit=st.integers(1, 300))
def test_chunks_cover_the_body_in_order_within_the_limit(body: str, limit: int) -> None:
    pieces = chunks(body, limit)
    end = 0
    for offset, text in pieces:
        assert body[offset : offset + len(text)] == text
        assert len(text) <= limit
        assert body[end:offset] in ("", "\n\n"), "only a paragraph break falls between pieces"
        end = offset + len(text)
    assert end == len(body)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headline=st.none() | odd_text, body=wire_like, dateline=st.none() | odd_text)
def test_entities_never_crash_and_point_into_the_body(
    nlp,
    headline: str | None,
    body: bytes,
    dateline: str | None,
) -> None:
    text = body.decode("utf-8", "surrogatepass")
    pieces = [(offset, nlp(piece)) for offset, piece in chunks(text, 200)]
    found = entity_records(nlp(headline) if headline else None, pieces, dateline)
    for entity in found:
        assert entity.canonical.strip() or entity.text.strip() == ""
        assert entity.mentions >= 1
        if entity.start >= 0:
            assert text[entity.start : entity.end] == entity.text
