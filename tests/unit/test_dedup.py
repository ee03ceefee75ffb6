import json
import random
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from transforms.clean import clean_body, content_hash
from transforms.dedup import Match, as_duplicate, bucket_candidates, choose_original, mark, order_of
from transforms.records import Article, Origin
from transforms.similarity import (
    Fingerprint,
    band_keys,
    compare,
    fingerprint,
    shingle_hashes,
    words,
)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "dedup" / "articles.jsonl"
STORIES = {a["id"]: a for a in map(json.loads, CORPUS.read_text().splitlines())}
T0 = datetime(2024, 11, 26, 9, tzinfo=timezone.utc)


def print_of(article_id: str) -> Fingerprint:
    article = STORIES[article_id]
    body = clean_body(article["body"], headline=article["headline"]).body
    return fingerprint(
        article_id, body, content_hash(body), datetime.fromisoformat(article["published_at"])
    )


def test_words_fold_case_quotes_and_punctuation() -> None:
    assert words("“NATO’s” plan—Rutte SAID.") == ["nato", "s", "plan", "rutte", "said"]
    assert shingle_hashes("One two three four five six") == shingle_hashes(
        "one TWO three, four five six"
    )
    assert len(shingle_hashes("one two three four five six")) == 2
    assert len(shingle_hashes("too short")) == 1
    assert shingle_hashes("") == frozenset()


def test_fingerprints_are_the_same_in_every_process() -> None:
    here = print_of("dd-001-a")
    code = (
        "from tests.unit.test_dedup import print_of; p = print_of('dd-001-a');"
        "print(p.signature[:8], band_keys(p)[:3])"
    )
    elsewhere = subprocess.run(
        [sys.executable, "-c", "from transforms.similarity import band_keys;" + code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.strip()
    assert elsewhere == f"{here.signature[:8]} {band_keys(here)[:3]}"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("dd-001-a", "dd-001-b", True),  # republished: a tweaked headline, a few words
        ("dd-001-a", "dd-001-c", True),  # a heavy rewrite with a new lede and a cut ending
        ("dd-014-a", "dd-014-c", True),  # the hardest rewrite of the corpus
        ("dd-001-a", "dd-001-d", True),  # the agency's write-through
        ("dd-001-a", "dd-001-fu", False),  # next-day follow-up reusing background paragraphs
        ("dd-009-c", "dd-009-fu", False),  # the follow-up closest to a copy
        ("dd-002-a", "dd-002-ss", False),  # another story quoting the same statement
        ("dd-001-a", "dd-002-a", False),  # same desk, byline and dateline; another story
    ],
)
def test_verification_tells_copies_from_hard_negatives(a: str, b: str, same: bool) -> None:
    verdict = compare(print_of(a), print_of(b))
    assert verdict.duplicate is same
    assert verdict.method == "near"
    assert compare(print_of(b), print_of(a)) == verdict  # symmetric


def test_exact_copies_share_the_exact_key_and_say_so() -> None:
    a = fingerprint("a", "Same words here.", content_hash("Same words here."), T0)
    b = fingerprint("b", "same  words here.", content_hash("same  words here."), None)
    assert band_keys(a)[0] == band_keys(b)[0]
    assert compare(a, b).method == "exact"
    assert compare(a, b).similarity == 1.0


def test_copies_share_candidate_keys_and_unrelated_stories_do_not() -> None:
    original, copy, other = (
        set(band_keys(print_of(i))) for i in ("dd-014-a", "dd-014-c", "dd-005-a")
    )
    assert original & copy
    assert not original & other


def test_the_original_is_the_earliest_then_the_smallest_id_whatever_the_order() -> None:
    members = [
        ("k3", ("later", T0.replace(hour=12))),
        ("k1", ("b-id", T0)),
        ("k2", ("a-id", T0)),
        ("k4", ("undated", None)),
    ]
    prints = {
        key: fingerprint(article_id, "x y z", content_hash("x y z"), published)
        for key, (article_id, published) in members
    }
    expected = {("k1", "k2"), ("k3", "k2"), ("k4", "k2")}
    for seed in range(5):
        shuffled = [(key, order_of(key, prints[key])) for key in prints]
        random.Random(seed).shuffle(shuffled)
        assert set(bucket_candidates(shuffled)) == expected


def test_the_earliest_verified_original_wins() -> None:
    early, late = print_of("dd-001-a"), print_of("dd-001-b")
    matches = [
        Match("k-late", late, True, 0.8, "near"),
        Match("k-early", early, True, 0.7, "near"),
        Match("k-other", print_of("dd-002-a"), False, 0.1, "near"),
    ]
    assert choose_original(matches).original_key == "k-early"
    assert choose_original(matches[2:]) is None


def test_marking_originals_and_duplicates() -> None:
    article = Article(
        id="dd-001-b",
        origin=Origin.file("/in/x"),
        url="u",
        source="s",
        published_at=T0,
        ingested_at=T0,
        headline="h",
        dateline=None,
        byline=None,
        language="en",
        body="b",
        word_count=1,
        content_hash="0",
    )
    original = mark(article, None)
    assert (original.dedup.cluster_id, original.dedup.duplicate_of) == ("dd-001-b", None)
    copy = mark(article, Match("k", print_of("dd-001-a"), True, 0.81, "near"))
    assert (copy.dedup.cluster_id, copy.dedup.duplicate_of, copy.dedup.similarity) == (
        "dd-001-a",
        "dd-001-a",
        0.81,
    )
    small = as_duplicate(copy)
    assert (small.id, small.duplicate_of, small.method, small.url) == (
        "dd-001-b",
        "dd-001-a",
        "near",
        "u",
    )
