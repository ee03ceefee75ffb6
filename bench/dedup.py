"""Dedup cost at scale: signature time, lookup time and state bytes per article.

Generates N synthetic wire articles (a seeded generator over the seeds' words,
about 10% of them republished copies with edits), fingerprints them, and feeds
them through an in-memory band index shaped like the streaming state (band key ->
earliest article) to time the per-article lookup; verification of candidates is
timed apart. Sizes grow by 10x to show how the cost grows.

    .venv/bin/python bench/dedup.py [--sizes 10000,100000] [--seed 7]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
import time
from pathlib import Path

from transforms.clean import clean_page, content_hash
from transforms.similarity import band_keys, compare, fingerprint

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
COPY_SHARE = 0.1
SIGNATURE_SAMPLE = 5000


def vocabulary() -> list[str]:
    """The words of the seed articles: realistic word lengths and frequencies."""
    found = []
    for path in sorted(SEEDS.glob("*.txt")):
        found.extend(clean_page(path.read_text()).body.split())
    return found


def synthetic(n: int, seed: int) -> list[tuple[str, str]]:
    """(id, body) pairs: new stories of random seed words, and edited copies of earlier ones."""
    chooser = random.Random(seed)
    pool = vocabulary()
    articles: list[tuple[str, str]] = []
    for number in range(n):
        if articles and chooser.random() < COPY_SHARE:
            _source, body = chooser.choice(articles[-1000:])
            paragraphs = body.split("\n\n")[: -chooser.randint(1, 2)]
            edited = [p.replace(" the ", " a ", 1) for p in paragraphs]
            articles.append((f"a{number}", "\n\n".join(edited)))
            continue
        paragraphs = [" ".join(chooser.choices(pool, k=50)) + "." for _ in range(7)]
        articles.append((f"a{number}", "\n\n".join(paragraphs)))
    return articles


def measure(n: int, seed: int) -> dict[str, float]:
    articles = synthetic(n, seed)
    # The signature is per article, whatever N: timed on a sample, nothing retained (as in a
    # worker), so the garbage collector's work on a huge heap of kept fingerprints is not counted.
    sample = articles[:SIGNATURE_SAMPLE]
    started = time.perf_counter()
    for article_id, body in sample:
        fingerprint(article_id, body, content_hash(body), None)
    signature_ms = (time.perf_counter() - started) / len(sample) * 1000
    prints = [fingerprint(i, body, content_hash(body), None) for i, body in articles]
    index: dict[str, str] = {}
    by_id = {p.id: p for p in prints}
    candidates: list[tuple[str, str]] = []
    started = time.perf_counter()
    for print_ in prints:
        for key in band_keys(print_):
            first = index.setdefault(key, print_.id)
            if first != print_.id:
                candidates.append((print_.id, first))
    lookup_us = (time.perf_counter() - started) / n * 1e6
    distinct = sorted(set(candidates))
    started = time.perf_counter()
    verified = sum(compare(by_id[a], by_id[b]).duplicate for a, b in distinct)
    verify_us = (time.perf_counter() - started) / max(len(distinct), 1) * 1e6
    index_bytes = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in index.items()) / n
    sketch_bytes = sum(len(pickle.dumps(sorted(p.shingles))) for p in prints[:1000]) / min(n, 1000)
    return {
        "articles": n,
        "signature_ms_per_article": round(signature_ms, 4),
        "lookup_us_per_article": round(lookup_us, 2),
        "verify_us_per_candidate": round(verify_us, 1),
        "candidates_per_article": round(len(distinct) / n, 3),
        "candidate_pairs_verified_duplicate": verified,
        "band_state_bytes_per_article": round(index_bytes),
        "sketch_bytes_per_article": round(sketch_bytes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated corpus sizes")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        figures = measure(size, args.seed)
        print(json.dumps(figures), flush=True)
        results.append(figures)
    lookups = [r["lookup_us_per_article"] for r in results]
    print(json.dumps({"sizes": results, "lookup_growth": round(max(lookups) / min(lookups), 2)}))


if __name__ == "__main__":
    main()
