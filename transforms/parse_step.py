"""Parsing as a Beam step: raw records in, articles or dead letters out.

Example:
    parsed = raw_records | "ParseArticles" >> ParseArticles()
    parsed[ParseArticles.ARTICLES], parsed[ParseArticles.DEAD_LETTERS]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone

import apache_beam as beam

from transforms.deadletters import MAX_DEAD_LETTER_PAYLOAD, make_dead_letter
from transforms.errors import ArticleError, RecordTooLarge
from transforms.metrics import StepMetrics
from transforms.parse import DEFAULT_MAX_RECORD_BYTES, parse_record
from transforms.records import Article, DeadLetter, RawRecord

__all__ = ["ParseArticles"]

LOGGER = logging.getLogger(__name__)


class _ParseFn(beam.DoFn):
    """Parse each record; refused ones go to the dead letters with the reason."""

    def __init__(self, max_record_bytes: int) -> None:
        self._max_record_bytes = max_record_bytes

    def setup(self) -> None:
        self._metrics = StepMetrics("parse")

    def process(self, raw: RawRecord) -> Iterator[Article | beam.pvalue.TaggedOutput]:
        now = datetime.now(timezone.utc)
        self._metrics.received()
        try:
            article = parse_record(raw, ingested_at=now, max_record_bytes=self._max_record_bytes)
        except ArticleError as exc:
            yield self._refuse(raw, exc, now)
            return
        except Exception as exc:  # a parser bug must not stop a stream; keep the record.
            LOGGER.exception("parser failed on %s", raw.origin)
            yield self._refuse(raw, exc, now)
            return
        self._metrics.ok()
        yield article

    def _refuse(self, raw: RawRecord, error: Exception, now: datetime) -> beam.pvalue.TaggedOutput:
        self._metrics.dead_lettered()
        letter: DeadLetter = make_dead_letter(
            raw.payload,
            raw.origin,
            stage="parse",
            error=error,
            failed_at=now,
            max_payload=MAX_DEAD_LETTER_PAYLOAD if isinstance(error, RecordTooLarge) else None,
        )
        return beam.pvalue.TaggedOutput(ParseArticles.DEAD_LETTERS, letter)


class ParseArticles(beam.PTransform):
    """``PCollection[RawRecord]`` → ``{"articles": Article, "dead_letters": DeadLetter}``."""

    ARTICLES = "articles"
    DEAD_LETTERS = "dead_letters"

    def __init__(self, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        super().__init__()
        if max_record_bytes <= 0:
            message = f"max_record_bytes must be positive, got {max_record_bytes}"
            raise ValueError(message)
        self._max_record_bytes = max_record_bytes

    def expand(self, records: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        """Parse every record into one of the two outputs."""
        return records | "Parse" >> beam.ParDo(_ParseFn(self._max_record_bytes)).with_outputs(
            self.DEAD_LETTERS, main=self.ARTICLES
        )
