"""The project's error catalogue.

Every error that sends a record to the dead letters is an :class:`ArticleError`;
its class name becomes the dead letter's ``error_type`` and its message the
``error_message``, so each message says what is wrong with the input.
"""

from __future__ import annotations

__all__ = [
    "ArticleError",
    "BinaryContent",
    "EmptyArticle",
    "InvalidEncoding",
    "InvalidField",
    "MalformedJson",
    "MessageTooLarge",
    "MissingField",
    "RecordTooLarge",
    "SchemaViolation",
    "UnreadableInput",
    "UnsupportedInput",
    "WirenewsError",
]


class WirenewsError(Exception):
    """Base class of every error this project raises on purpose."""


class ArticleError(WirenewsError):
    """One input record cannot become an article; it goes to the dead letters."""


class RecordTooLarge(ArticleError):
    """The record is larger than ``--max-record-bytes``."""


class MessageTooLarge(ArticleError):
    """The record, as a Kafka message, is larger than the producer's ``max_request_size``."""


class InvalidEncoding(ArticleError):
    """The bytes are not valid UTF-8 (or the gzip stream is corrupt)."""


class BinaryContent(ArticleError):
    """The bytes decode, but are control characters rather than text."""


class MalformedJson(ArticleError):
    """A ``.json``/``.jsonl`` record that is not a JSON object."""


class MissingField(ArticleError):
    """A required field (``body``) is absent."""


class InvalidField(ArticleError):
    """A field has the wrong type or an unparseable value."""


class EmptyArticle(ArticleError):
    """Nothing is left of the article once boilerplate is removed."""


class UnreadableInput(ArticleError):
    """A file that cannot be opened or read (permissions, I/O errors)."""


class UnsupportedInput(ArticleError):
    """A file whose format the pipeline does not read."""


class SchemaViolation(ArticleError):
    """A record does not fit the Avro schema (a bug, caught at the edge)."""
