"""Dedup cost at scale: signature time, lookup time and state bytes per article.

Streams N synthetic wire articles (a seeded generator over the seeds' words,
about 10% of them republished copies with edits) through fingerprinting and an
in-memory band index shaped like the streaming state (band key -> earliest
article), timing each apart per article; verification of candidates is timed on
the first articles. Sizes grow by 10x to show how the cost grows.

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
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from transforms.clean import clean_page, content_hash
from transforms.similarity import Fingerprint, band_keys, compare, fingerprint

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
COPY_SHARE = 0.1
# Fingerprints kept to time verification: the first articles only. All of them would need
# ~20 GB at 1M, and the garbage collector walking them would be timed with everything else.
VERIFY_SAMPLE = 2_000


def vocabulary() -> list[str]:
    """The words of the seed articles: realistic word lengths and frequencies."""
    found = []
    for path in sorted(SEEDS.glob("*.txt")):
        found.extend(clean_page(path.read_text()).body.split())
    return found


def synthetic(n: int, seed: int) -> Iterator[tuple[str, str]]:
    """(id, body) pairs: new stories of random seed words, and edited copies of recent ones."""
    chooser = random.Random(seed)
    pool = vocabulary()
    recent: deque[str] = deque(maxlen=1000)
    for number in range(n):
        if recent and chooser.random() < COPY_SHARE:
            paragraphs = chooser.choice(recent).split("\n\n")[: -chooser.randint(1, 2)]
            edited = [p.replace(" the ", " a ", 1) for p in paragraphs]
            yield f"a{number}", "\n\n".join(edited)
            continue
        body = "\n\n".join(" ".join(chooser.choices(pool, k=50)) + "." for _ in range(7))
        recent.append(body)
        yield f"a{number}", body


def measure(n: int, seed: int) -> dict[str, float]:
    """Signature, lookup and verification cost, and state bytes, over ``n`` articles.

    Articles stream through (as in a worker): only the band index (the state a
    stream keeps) grows with ``n``; fingerprints are kept for the first
    ``VERIFY_SAMPLE`` articles only, to time the verification of their candidates.
    """
    index: dict[str, str] = {}
    kept: dict[str, Fingerprint] = {}
    candidates: set[tuple[str, str]] = set()
    signing = looking = 0.0
    for count, (article_id, body) in enumerate(synthetic(n, seed)):
        started = time.perf_counter()
        print_ = fingerprint(article_id, body, content_hash(body), None)
        signed = time.perf_counter()
        keys = band_keys(print_)
        firsts = [index.setdefault(key, article_id) for key in keys]
        looked = time.perf_counter()
        signing += signed - started
        looking += looked - signed
        candidates.update((article_id, first) for first in firsts if first != article_id)
        if count < VERIFY_SAMPLE:
            kept[article_id] = print_
    verifiable = sorted((a, b) for a, b in candidates if a in kept and b in kept)
    started = time.perf_counter()
    verified = sum(compare(kept[a], kept[b]).duplicate for a, b in verifiable)
    verify_us = (time.perf_counter() - started) / max(len(verifiable), 1) * 1e6
    index_bytes = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in index.items()) / n
    sample = list(kept.values())[:1000]
    sketch_bytes = sum(len(pickle.dumps(sorted(p.shingles))) for p in sample) / len(sample)
    return {
        "articles": n,
        "signature_ms_per_article": round(signing / n * 1000, 4),
        "lookup_us_per_article": round(looking / n * 1e6, 2),
        "verify_us_per_candidate": round(verify_us, 1),
        "candidates_per_article": round(len(candidates) / n, 3),
        "candidate_pairs_verified_duplicate_in_sample": verified,
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
