from collections.abc import Callable
from datetime import datetime, timezone

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import article_json
from transforms.annotate import ExtractEntities
from transforms.parse import parse_record
from transforms.records import MediaType, Origin, RawRecord

NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)


def article(article_id: str, body: str, headline: str = "Talks resume"):
    raw = RawRecord(
        article_json(id=article_id, body=body, headline=headline), Origin.file("x"), MediaType.JSON
    )
    return parse_record(raw, ingested_at=NOW)


def test_english_articles_get_entities_and_others_pass_untouched(make_pipeline: Callable) -> None:
    articles = [
        article(
            "en-1", "HELSINKI — Prime Minister Aino Virtanen met NATO officials. Virtanen said."
        ),
        article(
            "fr-1",
            "PARIS — La Banque de France a revu à la baisse sa prévision de croissance, "
            "a annoncé mercredi son gouverneur, Emmanuel Moreau, lors d'une conférence.",
            headline="La Banque de France abaisse sa prévision",
        ),
    ]
    with make_pipeline() as p:
        found = (
            p
            | beam.Create(articles)
            | ExtractEntities(batch_size=8)
            | beam.Map(
                lambda a: (
                    a.id,
                    a.language,
                    sorted((e.canonical, e.label, e.mentions) for e in a.entities),
                )
            )
        )
        assert_that(
            found,
            equal_to(
                [
                    (
                        "en-1",
                        "en",
                        [
                            ("Aino Virtanen", "PERSON", 2),
                            ("Helsinki", "GPE", 1),
                            ("NATO", "ORG", 1),
                        ],
                    ),
                    ("fr-1", "fr", []),
                ]
            ),
        )
