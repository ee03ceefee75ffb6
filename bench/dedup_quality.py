"""Dedup quality on the labelled corpus in tests/data/dedup: pairwise precision and recall.

Runs the same pure core the pipeline runs (fingerprints, LSH band buckets, verification,
earliest original) and compares predicted clusters with the labelled stories, overall and
for exact copies, republished copies and the hard negatives.

    .venv/bin/python bench/dedup_quality.py [--corpus tests/data/dedup/articles.jsonl]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
from datetime import datetime
from pathlib import Path

from transforms.clean import clean_body, content_hash
from transforms.dedup import find_originals
from transforms.similarity import fingerprint

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "dedup" / "articles.jsonl"


def predict(articles: list[dict]) -> dict[str, str]:
    """Article id → the id of its predicted original (itself for originals)."""
    prints = {}
    for article in articles:
        body = clean_body(article["body"], headline=article["headline"]).body
        published = datetime.fromisoformat(article["published_at"])
        prints[article["id"]] = fingerprint(article["id"], body, content_hash(body), published)
    found = find_originals(prints)
    return {key: match.original.id if match else key for key, match in found.items()}


def pairwise(articles: list[dict], originals: dict[str, str]) -> dict[str, float]:
    story = {a["id"]: a["story"] for a in articles}
    role = {a["id"]: a["role"] for a in articles}

    def root(key: str) -> str:
        seen = set()
        while originals[key] != key and key not in seen:
            seen.add(key)
            key = originals[key]
        return key

    tp = fp = fn = 0
    missed, merged = [], []
    for a, b in itertools.combinations(story, 2):
        same = story[a] == story[b]
        predicted = root(a) == root(b)
        tp += same and predicted
        fp += predicted and not same
        fn += same and not predicted
        if predicted and not same:
            merged.append((a, b, role[a], role[b]))
        if same and not predicted:
            missed.append((a, b, role[a], role[b]))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    for pair in missed:
        print("missed", *pair)
    for pair in merged:
        print("merged", *pair)
    return {
        "pairs_true": tp + fn,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "false_merges": fp,
        "missed_pairs": fn,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    articles = [json.loads(line) for line in args.corpus.read_text().splitlines() if line.strip()]
    originals = predict(articles)
    figures = pairwise(articles, originals)
    copies = [a for a in articles if a["role"] in {"republished", "rewrite", "write-through"}]
    found = sum(1 for a in copies if originals[a["id"]] != a["id"])
    figures.update({"articles": len(articles), "copies": len(copies), "copies_found": found})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
