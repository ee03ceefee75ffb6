from datetime import datetime, timezone

import pytest

from tests.conftest import article_json
from transforms.errors import (
    BinaryContent,
    EmptyArticle,
    InvalidEncoding,
    InvalidField,
    MalformedJson,
    MissingField,
    RecordTooLarge,
)
from transforms.parse import parse_record
from transforms.records import MediaType, Origin, RawRecord

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def parse(payload: bytes, media_type: MediaType = MediaType.JSON, **kwargs: object):
    raw = RawRecord(payload=payload, origin=Origin.file("/in/x"), media_type=media_type, **kwargs)
    return parse_record(raw, ingested_at=NOW)


def test_seed_page(seed_page: bytes) -> None:
    article = parse(seed_page, MediaType.TEXT)
    assert article.headline == (
        "NATO leader sidesteps discussion on Ukraine’s membership, "
        "emphasizing support for Kyiv’s defense efforts."
    )
    assert article.dateline == "BRUSSELS"
    assert article.body.startswith("On Tuesday, NATO Secretary-General Mark Rutte")
    assert article.language == "en"
    assert article.word_count == 487
    assert article.published_at is None
    assert article.ingested_at == NOW
    assert article.origin == Origin.file("/in/x")
    assert len(article.id) == 16
    assert (article.entities, article.quotes, article.dedup) == ((), (), None)


def test_page_id_is_stable_and_depends_on_content(seed_page: bytes) -> None:
    first = parse(seed_page, MediaType.TEXT)
    again = parse(b"Share\n\n" + seed_page.replace(b"\n\n", b"\n"), MediaType.TEXT)
    other = parse(seed_page.replace(b"Rutte noted", b"Rutte said"), MediaType.TEXT)
    assert first.id == again.id
    assert first.content_hash == again.content_hash
    assert other.id != first.id


def test_json_article_fields() -> None:
    article = parse(article_json(published_at="2024-11-26T10:30:00+01:00"))
    assert article.id == "t-1"
    assert article.url == "https://example.test/t-1"
    assert article.source == "Test Wire"
    assert article.headline == "Ministers agree on a plan"
    assert article.dateline == "LONDON"
    assert article.body.startswith("Ministers agreed on Tuesday")
    assert article.published_at == datetime(2024, 11, 26, 9, 30, tzinfo=timezone.utc)


def test_json_time_without_zone_is_utc_and_numeric_ids_are_text() -> None:
    article = parse(article_json(id=42, published_at="2024-11-26T09:30:00"))
    assert article.id == "42"
    assert article.published_at == datetime(2024, 11, 26, 9, 30, tzinfo=timezone.utc)


def test_kafka_key_is_the_id_when_the_article_has_none() -> None:
    assert parse(article_json(id=...), key="k-9").id == "k-9"
    assert parse(article_json(id="given"), key="k-9").id == "given"
    # A blank key names nothing: the id comes from the text, as without a key.
    assert parse(article_json(id=...), key="\r").id == parse(article_json(id=...)).id


def test_json_without_optional_fields() -> None:
    article = parse(b'{"body": "A storm closed ports on Monday, officials said."}')
    assert (article.headline, article.url, article.source) == (None, None, None)
    assert article.body == "A storm closed ports on Monday, officials said."


def test_french_article_is_recognised() -> None:
    body = (
        "PARIS — La Banque de France a revu à la baisse, mercredi, sa prévision de croissance "
        "pour l'an prochain, en raison du ralentissement du commerce mondial."
    )
    assert parse(article_json(body=body)).language == "fr"


def test_utf8_bom_is_accepted() -> None:
    assert parse(b"\xef\xbb\xbf" + article_json()).id == "t-1"


@pytest.mark.parametrize(
    ("payload", "media_type", "error", "reason"),
    [
        (b"", MediaType.TEXT, EmptyArticle, "empty"),
        (b"  \n\t ", MediaType.JSON, EmptyArticle, "empty"),
        (bytes(range(256)), MediaType.TEXT, InvalidEncoding, "byte 0x80 at offset 128"),
        (b"\x01\x02\x03\x04" * 100, MediaType.TEXT, BinaryContent, "control characters"),
        (b"Hello\x00world, this is text", MediaType.TEXT, BinaryContent, "binary"),
        (b'{"body": "unterminated', MediaType.JSON, MalformedJson, "not JSON"),
        (b"[1, 2, 3]", MediaType.JSON, MalformedJson, "expected a JSON object, got list"),
        (b"[" * 100_000 + b"]" * 100_000, MediaType.JSON, MalformedJson, "nested too deeply"),
        (b'{"headline": "x"}', MediaType.JSON, MissingField, "no 'body'"),
        (b'{"body": ""}', MediaType.JSON, EmptyArticle, "'body' is empty"),
        (b'{"body": 12}', MediaType.JSON, InvalidField, "'body' must be a string"),
        (b'{"body": "\\ud800 text"}', MediaType.JSON, InvalidEncoding, "lone surrogate"),
        (b'{"body": "x y z", "id": true}', MediaType.JSON, InvalidField, "'id'"),
        (b'{"body": "x y z", "id": " "}', MediaType.JSON, InvalidField, "'id' is empty"),
        (
            b'{"body": "x y z", "published_at": "last Tuesday"}',
            MediaType.JSON,
            InvalidField,
            "not an ISO 8601 time",
        ),
        (b"Share\n\nAdvertisement\n\n12\n", MediaType.TEXT, EmptyArticle, "boilerplate"),
        (b'{"body": "Share\\n\\nRead more"}', MediaType.JSON, EmptyArticle, "boilerplate"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    payload: bytes, media_type: MediaType, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        parse(payload, media_type)


def test_invalid_utf8_in_the_middle_of_a_fine_article(seed_page: bytes) -> None:
    middle = len(seed_page) // 2
    with pytest.raises(InvalidEncoding, match=f"offset {middle:,}"):
        parse(seed_page[:middle] + b"\xff" + seed_page[middle:], MediaType.TEXT)


def test_record_over_the_limit_is_refused_before_decoding() -> None:
    raw = RawRecord(payload=b"\xff" * 101, origin=Origin.file("/in/x"), media_type=MediaType.TEXT)
    with pytest.raises(RecordTooLarge, match="101 bytes, over the limit of 100"):
        parse_record(raw, ingested_at=NOW, max_record_bytes=100)


def test_two_megabyte_body_is_parsed() -> None:
    body = "\n\n".join(
        f"Paragraph {n} about the harbour and its ministers. " * 12 for n in range(3500)
    )
    article = parse(article_json(body=body))
    assert len(article.body.encode()) > 2_000_000
    assert article.word_count == 3500 * 12 * 8
