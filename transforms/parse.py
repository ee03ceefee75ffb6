"""From raw bytes to a clean :class:`~transforms.records.Article`, or why it is not one.

The pure core, free of Beam so that ``wirenews feed`` starts quickly;
:class:`transforms.parse_step.ParseArticles` wraps it as a Beam step.

Example:
    article = parse_record(raw, ingested_at=datetime.now(timezone.utc))
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any

from transforms.clean import (
    CleanText,
    clean_body,
    clean_page,
    content_hash,
    count_words,
    normalize_for_hash,
    normalize_line,
)
from transforms.errors import (
    BinaryContent,
    EmptyArticle,
    InvalidEncoding,
    InvalidField,
    MalformedJson,
    MissingField,
    RecordTooLarge,
)
from transforms.language import detect_language
from transforms.records import Article, MediaType, RawRecord

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "article_document",
    "decode_text",
    "parse_record",
]

# Far above any real story (a long feature is ~100 KB), far below what would
# hurt a worker. Larger records are dead-lettered; see --max-record-bytes.
DEFAULT_MAX_RECORD_BYTES = 10 * 1024 * 1024
# Control characters other than tab/newline/CR in real text are rare; above this
# share the bytes are binary that happened to decode.
_MAX_CONTROL_SHARE = 0.01
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Optional fields of a JSON article; "dateline" and "byline" are what
# `wirenews feed` sends once it has taken them out of the body.
_OPTIONAL_TEXT_FIELDS = ("headline", "url", "source", "dateline", "byline")


def parse_record(
    raw: RawRecord,
    *,
    ingested_at: datetime,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Article:
    """Parse and clean one raw record.

    Raises:
        ArticleError: the record cannot be an article; the message says why.
    """
    if len(raw.payload) > max_record_bytes:
        message = (
            f"record is {len(raw.payload):,} bytes, over the limit of {max_record_bytes:,} "
            "(--max-record-bytes)"
        )
        raise RecordTooLarge(message)
    text = decode_text(raw.payload)
    key = raw.key.strip() if raw.key else None  # a blank key names nothing
    if raw.media_type is MediaType.JSON:
        fields = _json_fields(text)
        cleaned = clean_body(fields["body"], headline=fields.get("headline"))
        given_id = fields.get("id") or key
    else:
        fields = {}
        cleaned = clean_page(text)
        given_id = key
    if not cleaned.paragraphs:
        message = "no article text is left once boilerplate is removed"
        raise EmptyArticle(message)
    body = cleaned.body
    return Article(
        id=given_id or derive_id(cleaned),
        origin=raw.origin,
        url=fields.get("url"),
        source=fields.get("source"),
        published_at=fields.get("published_at"),
        ingested_at=ingested_at,
        headline=cleaned.headline,
        dateline=fields.get("dateline") or cleaned.dateline,
        byline=fields.get("byline") or cleaned.byline,
        language=detect_language(body),
        body=body,
        word_count=count_words(body),
        content_hash=content_hash(body),
    )


def decode_text(payload: bytes) -> str:
    """Decode UTF-8 strictly, refusing empty input and binary that happens to decode."""
    if not payload.strip():
        message = "the record is empty"
        raise EmptyArticle(message)
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = (
            f"not valid UTF-8: byte 0x{payload[exc.start]:02x} at offset {exc.start:,} "
            f"({exc.reason})"
        )
        raise InvalidEncoding(message) from exc
    controls = len(_CONTROL_CHARS.findall(text))
    if "\x00" in text or controls > _MAX_CONTROL_SHARE * len(text):
        message = f"binary content: {controls:,} control characters in {len(text):,}"
        raise BinaryContent(message)
    return text


def derive_id(cleaned: CleanText) -> str:
    """A stable id for an article that came without one: the same text, the same id."""
    basis = normalize_for_hash(f"{cleaned.headline or ''}\n{cleaned.body}")
    return hashlib.blake2b(basis.encode(), digest_size=8).hexdigest()


def article_document(text: str) -> dict[str, Any]:
    """The JSON object of an article whose ``body`` is text with something in it.

    Raises:
        ArticleError: not JSON, not an object, or no usable body; the message says why.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"not JSON: {exc}"
        raise MalformedJson(message) from exc
    except RecursionError as exc:
        message = "not an article: JSON nested too deeply"
        raise MalformedJson(message) from exc
    if not isinstance(document, dict):
        message = f"expected a JSON object, got {type(document).__name__}"
        raise MalformedJson(message)
    if document.get("body") is None:
        message = "the article has no 'body' field"
        raise MissingField(message)
    if not _text_field(document, "body").strip():
        message = "the article's 'body' is empty"
        raise EmptyArticle(message)
    return document


def _json_fields(text: str) -> dict[str, Any]:
    document = article_document(text)
    fields: dict[str, Any] = {"body": document["body"]}
    for name in _OPTIONAL_TEXT_FIELDS:
        if document.get(name) is not None:
            fields[name] = normalize_line(_text_field(document, name)) or None
    if document.get("id") is not None:
        fields["id"] = _id_field(document["id"])
    if document.get("published_at") is not None:
        fields["published_at"] = parse_timestamp(_text_field(document, "published_at"))
    return fields


def _text_field(document: dict[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str):
        message = f"field {name!r} must be a string, not {type(value).__name__}"
        raise InvalidField(message)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        message = f"field {name!r} holds a lone surrogate at character {exc.start:,}"
        raise InvalidEncoding(message) from exc
    return value


def _id_field(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        message = f"field 'id' must be a string or an integer, not {type(value).__name__}"
        raise InvalidField(message)
    text = normalize_line(str(value))
    if not text:
        message = "field 'id' is empty"
        raise InvalidField(message)
    return _text_field({"id": text}, "id")


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 time; one without a zone is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        message = f"field 'published_at' is not an ISO 8601 time: {value[:40]!r}"
        raise InvalidField(message) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
