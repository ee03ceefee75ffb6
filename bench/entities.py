"""Entities: quality on the labelled set, and the step's throughput beside bare spaCy.

Quality: PERSON/ORG/GPE entities per article (canonical name and label) against
tests/data/nlp/articles.jsonl; an entity counts as found when our canonical name
is its canonical name or one of its aliases. Throughput: the same texts through
bare ``nlp.pipe`` (same model, same components, a separate copy) and through the
step's code (nlp.pipe with the fixes, then entity and quote records), in one process.

    .venv/bin/python bench/entities.py [--repeat 3]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from transforms.entities import body_mentions, chunks, entity_pipeline, entity_records
from transforms.nlp import DEFAULT_MODEL, load_pipeline
from transforms.quotes import find_quotes

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "nlp" / "articles.jsonl"
SCORED = {"PERSON", "ORG", "GPE"}


def quality(articles: list[dict]) -> dict[str, float]:
    nlp = entity_pipeline(DEFAULT_MODEL)
    tp = fp = fn = 0
    for article in articles:
        found = entity_records(
            nlp(article["headline"]),
            [(offset, nlp(text)) for offset, text in chunks(article["body"])],
            dateline=None,  # the labelled set does not annotate dateline places
        )
        predicted = {(e.canonical, e.label) for e in found if e.label in SCORED}
        names = {}
        for gold in article["entities"]:
            for alias in [gold["canonical"], *gold.get("aliases", [])]:
                names[(alias, gold["label"])] = gold["canonical"]
        matched = {names[p] for p in predicted if p in names}
        tp += len(matched)
        fn += len(article["entities"]) - len(matched)
        fp += sum(1 for p in predicted if p not in names)
    return {
        "entity_precision": round(tp / (tp + fp), 4),
        "entity_recall": round(tp / (tp + fn), 4),
        "gold_entities": tp + fn,
    }


def throughput(articles: list[dict], repeat: int) -> dict[str, float]:
    texts = [t for a in articles for t in (a["headline"], a["body"])] * repeat
    words = sum(len(t.split()) for t in texts)
    bare = load_pipeline(DEFAULT_MODEL, frozenset({"ner"}))
    started = time.perf_counter()
    for _doc in bare.pipe(texts, batch_size=64):
        pass
    bare_seconds = time.perf_counter() - started
    ours = entity_pipeline(DEFAULT_MODEL)
    started = time.perf_counter()
    docs = iter(ours.pipe(texts, batch_size=64))
    for text_number in range(0, len(texts), 2):
        headline, body = next(docs), next(docs)
        entity_records(headline, [(0, body)])
        find_quotes(texts[text_number + 1], body_mentions(headline, [(0, body)]))
    step_seconds = time.perf_counter() - started
    return {
        "texts": len(texts),
        "bare_words_per_s": round(words / bare_seconds),
        "step_words_per_s": round(words / step_seconds),
        "step_over_bare": round(bare_seconds / step_seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes over the corpus for timing")
    args = parser.parse_args()
    articles = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    figures = {"articles": len(articles), **quality(articles), **throughput(articles, args.repeat)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
