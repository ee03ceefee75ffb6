from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from pipeline.graph import build_outputs
from pipeline.io.file_source import ReadArticleFiles
from tests.conftest import EXPECTED_BAD, EXPECTED_GOOD_FROM_BAD, article_json
from transforms.parse_step import ParseArticles
from transforms.records import MediaType, Origin, RawRecord


def where(letter) -> str:
    name = Path(letter.origin.path).name
    return f"{name}:{letter.origin.line}" if letter.origin.line else name


def test_parse_articles_splits_articles_from_dead_letters(make_pipeline: Callable) -> None:
    raws = [
        RawRecord(article_json(id="good"), Origin.kafka("wire", 0, 7), MediaType.JSON),
        RawRecord(b"{not json", Origin.kafka("wire", 0, 8), MediaType.JSON),
        RawRecord(b"", Origin.kafka("wire", 1, 3), MediaType.TEXT),
    ]
    with make_pipeline() as p:
        parsed = p | beam.Create(raws) | ParseArticles()
        assert_that(
            parsed[ParseArticles.ARTICLES] | "Ids" >> beam.Map(lambda a: (a.id, str(a.origin))),
            equal_to([("good", "wire[0]@7")]),
            label="articles",
        )
        assert_that(
            parsed[ParseArticles.DEAD_LETTERS]
            | "Reasons" >> beam.Map(lambda d: (str(d.origin), d.stage, d.error_type, d.payload)),
            equal_to(
                [
                    ("wire[0]@8", "parse", "MalformedJson", b"{not json"),
                    ("wire[1]@3", "parse", "EmptyArticle", b""),
                ]
            ),
            label="dead letters",
        )


def test_read_article_files_reads_every_seed(make_pipeline: Callable, seeds_dir: Path) -> None:
    with make_pipeline() as p:
        read = p | ReadArticleFiles(str(seeds_dir))
        assert_that(
            read[ReadArticleFiles.RECORDS] | beam.combiners.Count.Globally(),
            equal_to([15]),
            label="records",
        )
        assert_that(read[ReadArticleFiles.DEAD_LETTERS], equal_to([]), label="dead letters")


def test_every_bad_input_lands_in_exactly_one_output(
    make_pipeline: Callable, bad_inputs: Callable[[], Path]
) -> None:
    folder = bad_inputs()
    with make_pipeline("--source", str(folder)) as p:
        outputs = build_outputs(p, p.options)
        assert_that(
            outputs.articles | "Ids" >> beam.Map(lambda a: a.id),
            equal_to(sorted(EXPECTED_GOOD_FROM_BAD)),
            label="articles",
        )
        assert_that(
            outputs.dead_letters | "Where" >> beam.Map(lambda d: (where(d), d.error_type)),
            equal_to(sorted(EXPECTED_BAD.items())),
            label="dead letters",
        )
