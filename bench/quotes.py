"""Quotes: precision, recall and speaker accuracy on the labelled set.

Runs the pipeline's NLP (NER, fixes, linked canonical names, the quote
component's core) over tests/data/nlp/articles.jsonl and scores quotes the way
the issue does: a predicted quote matches a gold one when one text contains the
other or their token Jaccard is at least 0.8; its speaker is right when it is the
gold speaker's canonical name or one of that entity's aliases (or both are
unknown). Direct and partial quotes are scored together; indirect ones apart.

    .venv/bin/python bench/quotes.py [--show-errors]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from transforms.entities import body_mentions, chunks, entity_pipeline
from transforms.nlp import DEFAULT_MODEL
from transforms.quotes import INDIRECT, find_quotes
from transforms.records import Quote

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "nlp" / "articles.jsonl"
JACCARD = 0.8


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def texts_match(predicted: str, gold: str) -> bool:
    """The issue's rule: containment either way, or token Jaccard >= 0.8."""
    a, b = predicted.strip(" ,.").lower(), gold.strip(" ,.").lower()
    if a in b or b in a:
        return True
    ta, tb = _tokens(a), _tokens(b)
    return bool(ta | tb) and len(ta & tb) / len(ta | tb) >= JACCARD


def _aliases(article: dict) -> dict[str, str]:
    names = {}
    for entity in article["entities"]:
        for alias in [entity["canonical"], *entity.get("aliases", [])]:
            names[alias] = entity["canonical"]
    return names


def _pair(predicted: list[Quote], gold: list[dict]) -> list[tuple[Quote, dict]]:
    """Greedy one-to-one matching in text order."""
    pairs, used = [], set()
    for quote in predicted:
        for number, wanted in enumerate(gold):
            if number not in used and texts_match(quote.text, wanted["text"]):
                pairs.append((quote, wanted))
                used.add(number)
                break
    return pairs


def score(articles: list[dict], *, show_errors: bool = False) -> dict[str, float]:
    nlp = entity_pipeline(DEFAULT_MODEL)
    totals: Counter[str] = Counter()
    by_pattern: Counter[str] = Counter()
    found_by_pattern: Counter[str] = Counter()
    for article in articles:
        headline = nlp(article["headline"])
        body = [(offset, nlp(text)) for offset, text in chunks(article["body"])]
        quotes = find_quotes(article["body"], body_mentions(headline, body))
        aliases = _aliases(article)
        for indirect in (False, True):
            predicted = [q for q in quotes if (q.kind == INDIRECT) == indirect]
            gold = [g for g in article["quotes"] if (g["kind"] == INDIRECT) == indirect]
            pairs = _pair(predicted, gold)
            prefix = "indirect_" if indirect else ""
            totals[prefix + "predicted"] += len(predicted)
            totals[prefix + "gold"] += len(gold)
            totals[prefix + "matched"] += len(pairs)
            for quote, wanted in pairs:
                right = aliases.get(quote.speaker or "", quote.speaker) == wanted["speaker"]
                totals[prefix + "speaker_right"] += right
                found_by_pattern[wanted["pattern"]] += 1
                if show_errors and not right:
                    print(
                        f"SPEAKER {article['id']} {wanted['pattern']}: {quote.speaker!r} "
                        f"≠ {wanted['speaker']!r} [{quote.cue}] {quote.text[:60]!r}"
                    )
            for wanted in gold:
                by_pattern[wanted["pattern"]] += 1
            if show_errors:
                matched_q = {id(q) for q, _ in pairs}
                matched_g = {id(g) for _, g in pairs}
                for quote in predicted:
                    if id(quote) not in matched_q:
                        print(
                            f"EXTRA {article['id']} {quote.kind}: {quote.text[:80]!r} "
                            f"({quote.speaker})"
                        )
                for wanted in gold:
                    if id(wanted) not in matched_g:
                        print(
                            f"MISSED {article['id']} {wanted['pattern']}: "
                            f"{wanted['text'][:80]!r} ({wanted['speaker']})"
                        )
    figures: dict[str, float] = {}
    for prefix in ("", "indirect_"):
        predicted, gold = totals[prefix + "predicted"], totals[prefix + "gold"]
        matched, right = totals[prefix + "matched"], totals[prefix + "speaker_right"]
        precision = matched / predicted if predicted else 0.0
        recall = matched / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        p_both, r_both = (right / predicted if predicted else 0.0), right / gold if gold else 0.0
        f1_both = 2 * p_both * r_both / (p_both + r_both) if p_both + r_both else 0.0
        figures |= {
            f"{prefix}quote_precision": round(precision, 4),
            f"{prefix}quote_recall": round(recall, 4),
            f"{prefix}quote_f1": round(f1, 4),
            f"{prefix}speaker_accuracy": round(right / matched, 4) if matched else 0.0,
            f"{prefix}quote_and_speaker_f1": round(f1_both, 4),
            f"{prefix}gold_quotes": gold,
        }
    figures["recall_by_pattern"] = {
        pattern: round(found_by_pattern[pattern] / count, 3)
        for pattern, count in sorted(by_pattern.items())
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-errors", action="store_true", help="print every miss and extra")
    args = parser.parse_args()
    articles = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    figures = score(articles, show_errors=args.show_errors)
    for key, value in figures.items():
        print(f"{key:>32}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
