import json
import random
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream as ScriptedStream  # not collected
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration

from pipeline.job import job_counters
from transforms.dedup import (
    FINGERPRINTS,
    DeduplicateArticles,
    DeduplicateStream,
    _BandIndex,
    _CompareFn,
    find_originals,
)
from transforms.parse import parse_record
from transforms.records import MediaType, Origin, RawRecord
from transforms.similarity import fingerprint

CORPUS = Path(__file__).resolve().parents[1] / "data" / "dedup" / "articles.jsonl"
LABELLED = [json.loads(line) for line in CORPUS.read_text().splitlines()]
STORY = {a["id"]: a["story"] for a in LABELLED}
COPIES = {a["id"] for a in LABELLED if a["role"] in {"republished", "rewrite", "write-through"}}
NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)


def articles(seed: int) -> list:
    shuffled = list(LABELLED)
    random.Random(seed).shuffle(shuffled)
    return [
        parse_record(
            RawRecord(json.dumps(a).encode(), Origin.file("corpus", n), MediaType.JSON),
            ingested_at=NOW,
        )
        for n, a in enumerate(shuffled, start=1)
    ]


def run(make_pipeline: Callable, seed: int, keep: bool = False) -> tuple[list, list]:
    found: dict[str, list] = {}
    with make_pipeline() as p:
        deduped = p | beam.Create(articles(seed)) | DeduplicateArticles(keep=keep)
        for tag in (DeduplicateArticles.ARTICLES, DeduplicateArticles.DUPLICATES):
            pairs = deduped[tag] | f"Pairs{tag}" >> beam.Map(
                lambda r: (
                    r.id,
                    r.duplicate_of if hasattr(r, "duplicate_of") else r.dedup.duplicate_of,
                )
            )
            found[tag] = pairs
        expected_duplicates = sorted(COPIES) if not keep else []
        assert_that(
            found[DeduplicateArticles.DUPLICATES] | "DuplicateIds" >> beam.Keys(),
            equal_to(expected_duplicates),
            label="duplicates",
        )
        assert_that(
            found[DeduplicateArticles.DUPLICATES]
            | "SameStory"
            >> beam.MapTuple(lambda article_id, original: STORY[article_id] == STORY[original]),
            equal_to([True] * len(expected_duplicates)),
            label="same story",
        )
        kept = sorted(STORY) if keep else sorted(set(STORY) - COPIES)
        assert_that(
            found[DeduplicateArticles.ARTICLES] | beam.Keys(), equal_to(kept), label="articles"
        )
    return kept, expected_duplicates


def test_copies_go_to_duplicates_and_everything_else_stays(make_pipeline: Callable) -> None:
    run(make_pipeline, seed=1)


def test_keep_flags_duplicates_among_the_articles(make_pipeline: Callable) -> None:
    run(make_pipeline, seed=2, keep=True)


def test_the_result_does_not_depend_on_input_order(make_pipeline: Callable) -> None:
    unshuffled = {str(a.origin): a for a in articles(seed=0)}
    reference = find_originals(
        {
            k: fingerprint(a.id, a.body, a.content_hash, a.published_at)
            for k, a in unshuffled.items()
        }
    )
    expected = sorted((unshuffled[k].id, m.original.id) for k, m in reference.items() if m)
    assert len(expected) == len(COPIES)
    for seed in (3, 4):
        with make_pipeline() as p:
            deduped = p | beam.Create(articles(seed)) | DeduplicateArticles()
            assert_that(
                deduped[DeduplicateArticles.DUPLICATES]
                | beam.Map(lambda d: (d.id, d.duplicate_of)),
                equal_to(expected),
            )


def test_an_ask_just_after_its_original_expired_is_answered_at_once() -> None:
    """The race at the horizon, on the compare step alone (DirectRunner, TestStream).

    A band may name an original whose fingerprint expires before the ask reaches it;
    that ask must get "not a duplicate" rather than wait for ever (its collector would
    hold the stream's watermark). An ask that comes before its original's fingerprint
    still waits for it.
    """
    [early, late, copy] = (
        fingerprint(name, a.body, a.content_hash, None)
        for name, a in zip(("early", "late", "copy"), articles(seed=0)[:1] * 3, strict=True)
    )
    stream = (
        ScriptedStream()
        .add_elements([TimestampedValue(("early", ("ask", ("copy-of-early", copy))), 0)])
        .add_elements([TimestampedValue(("early", ("print", early)), 1)])
        .add_elements([TimestampedValue(("late", ("print", late)), 2)])
        .advance_watermark_to(20)  # past the 10 s horizon: both fingerprints expired
        .add_elements([TimestampedValue(("late", ("ask", ("copy-of-late", copy))), 21)])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(runner="DirectRunner", options=PipelineOptions(streaming=True)) as p:
        verdicts = (
            p
            | stream
            | beam.ParDo(_CompareFn(Duration(seconds=10))).with_input_types(tuple[str, Any])
            | beam.MapTuple(lambda member, verdict: (member, verdict[1].duplicate))
        )
        assert_that(verdicts, equal_to([("copy-of-early", True), ("copy-of-late", False)]))


def test_a_band_names_the_first_article_seen_within_the_horizon(
    make_pipeline: Callable,
) -> None:
    """The band index alone, with a 10 s horizon, on Prism: entries live in 30 s windows.

    "b", 8 s after "a", is answered with "a". "c" comes 11 s after "a", which its
    window still holds but the horizon has passed, so "b" answers it. "d" gets "c";
    "e" finds no one in its window. "f" comes exactly a horizon after "e": too late
    for it. "g" gets "f"; "h", exactly on a window's start, reads the window that
    began a horizon before it, and gets "g" ("f" is exactly a horizon old). Then
    two come out of order across a window's start, as from partitions read apart
    (both ahead of the watermark, so neither is late): one of them must name the other.
    """
    stream = ScriptedStream()
    arrivals = (
        (1, "a"),
        (9, "b"),
        (12, "c"),
        (21, "d"),
        (40, "e"),
        (50, "f"),
        (55, "g"),
        (60, "h"),
    )
    for second, member in arrivals:
        stream = stream.add_elements([TimestampedValue(("band", member), second)])
        stream = stream.advance_watermark_to(second)
    stream = stream.add_elements([TimestampedValue(("band", "y"), 81)]).advance_watermark_to(75)
    stream = stream.add_elements([TimestampedValue(("band", "x"), 78)])
    with make_pipeline("--streaming") as p:
        replies = (
            p
            | stream.advance_watermark_to_infinity()
            | _BandIndex(Duration(seconds=10))
            | beam.MapTuple(lambda member, reply: (member, reply[1]))
        )
        assert_that(
            replies | "InOrder" >> beam.Filter(lambda pair: not {"x", "y"} & set(pair)),
            equal_to([("b", "a"), ("c", "b"), ("d", "c"), ("g", "f"), ("h", "g")]),
            label="in order",
        )
        assert_that(
            replies
            | "OutOfOrder" >> beam.Filter(lambda pair: bool({"x", "y"} & set(pair)))
            | beam.Map(lambda pair: tuple(sorted(pair))),
            equal_to([("x", "y")]),
            label="out of order",
        )


def test_the_stream_finds_what_the_batch_finds_when_originals_come_first(
    make_pipeline: Callable,
) -> None:
    """Streaming dedup on Prism (as streams run), one article at a time in published order.

    First seen is then earliest published, as in batch, so the duplicates and their
    originals must be the batch's, and every other article must come out once. An
    asker that decided before all of an article's bands had replied would miss
    candidates: one that trusted a watermark timer at the article's own time did,
    for 16 copies, because Prism fires a timer as soon as the watermark reaches it.
    """
    in_order = in_published_order()
    reference = find_originals(
        {str(a.origin): fingerprint(a.id, a.body, a.content_hash, a.published_at) for a in in_order}
    )
    by_key = {str(a.origin): a for a in in_order}
    expected = sorted((by_key[k].id, m.original.id) for k, m in reference.items() if m)
    assert len(expected) == len(COPIES)
    with make_pipeline("--streaming") as p:
        deduped = p | one_a_second(in_order) | DeduplicateStream()
        assert_that(
            deduped[DeduplicateArticles.DUPLICATES] | beam.Map(lambda d: (d.id, d.duplicate_of)),
            equal_to(expected),
            label="duplicates",
        )
        assert_that(
            deduped[DeduplicateArticles.ARTICLES] | beam.Map(lambda a: a.id),
            equal_to(sorted(set(STORY) - COPIES)),
            label="articles",
        )


def test_the_stream_lets_go_of_all_its_state_once_the_horizon_has_passed(
    make_pipeline: Callable,
) -> None:
    """Streaming dedup with a 3 s horizon over 68 s of articles, then the end of time.

    Fingerprints expire as the watermark passes their horizon (through a tombstone), so
    the counter of those held comes back to zero; and every article still comes out
    once, as an article or a duplicate.
    """
    in_order = in_published_order()
    p = make_pipeline("--streaming")
    deduped = p | one_a_second(in_order) | DeduplicateStream(horizon_seconds=3)
    ids = (
        deduped[DeduplicateArticles.ARTICLES] | "ArticleIds" >> beam.Map(lambda a: a.id),
        deduped[DeduplicateArticles.DUPLICATES] | "DuplicateIds" >> beam.Map(lambda d: d.id),
    ) | beam.Flatten()
    assert_that(ids, equal_to([a.id for a in in_order]))
    result = p.run()
    result.wait_until_finish()
    counters = job_counters(result)
    assert counters.get(FINGERPRINTS) == 0  # None: the counter was never reported


def in_published_order() -> list:
    return sorted(articles(seed=0), key=lambda a: (a.published_at, a.id))


def one_a_second(in_order: list) -> ScriptedStream:
    """The articles one at a time, a second apart in event time, the watermark after each."""
    stream = ScriptedStream()
    for second, article in enumerate(in_order, start=1):
        stream = stream.add_elements([TimestampedValue(article, second)]).advance_watermark_to(
            second
        )
    return stream.advance_watermark_to_infinity()
