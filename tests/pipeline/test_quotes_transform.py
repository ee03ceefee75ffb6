from collections.abc import Callable
from datetime import datetime, timezone

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import article_json
from transforms.annotate import AnnotateArticles, ExtractQuotes
from transforms.parse import parse_record
from transforms.records import MediaType, Origin, RawRecord

NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)
BODY = (
    "BRUSSELS — NATO Secretary-General Mark Rutte met ministers on Tuesday.\n\n"
    "“The front lines are not shifting eastward,” Rutte noted. He said that the alliance "
    "would keep sending air defence systems."
)


def article(article_id: str, body: str):
    raw = RawRecord(article_json(id=article_id, body=body), Origin.file("x"), MediaType.JSON)
    return parse_record(raw, ingested_at=NOW)


def test_quotes_are_attributed_to_canonical_speakers(make_pipeline: Callable) -> None:
    with make_pipeline() as p:
        found = (
            p
            | beam.Create([article("q-1", BODY)])
            | ExtractQuotes(batch_size=4)
            | beam.FlatMap(lambda a: [(q.kind, q.speaker, q.cue, q.text) for q in a.quotes])
        )
        assert_that(
            found,
            equal_to(
                [
                    ("direct", "Mark Rutte", "noted", "The front lines are not shifting eastward,"),
                    (
                        "indirect",
                        "Mark Rutte",
                        "said",
                        "the alliance would keep sending air defence systems",
                    ),
                ]
            ),
        )


@pytest.mark.parametrize("processes", [0, 1], ids=["in the worker", "in a helper process"])
def test_one_pass_fills_entities_and_quotes_and_keeps_times(
    make_pipeline: Callable, processes: int
) -> None:
    stamp = 1_700_000_000
    with make_pipeline() as p:
        found = (
            p
            | beam.Create([article("q-2", BODY)])
            | beam.Map(lambda a: beam.window.TimestampedValue(a, stamp))
            | AnnotateArticles(batch_size=4, processes=processes)
            | beam.Map(
                lambda a, t=beam.DoFn.TimestampParam: (
                    len(a.quotes),
                    ("Mark Rutte", "PERSON") in {(e.canonical, e.label) for e in a.entities},
                    t.micros // 1_000_000,
                )
            )
        )
        assert_that(found, equal_to([(2, True, stamp)]))
