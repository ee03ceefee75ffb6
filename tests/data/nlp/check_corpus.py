"""Validate articles.jsonl and print the counts quoted in README.md.

Run from anywhere: ``.venv/bin/python tests/data/nlp/check_corpus.py``.
Exits with status 1 and lists the problems if any check fails.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

CORPUS = Path(__file__).with_name("articles.jsonl")
KEYS = {"id", "headline", "dateline", "body", "entities", "quotes"}
LABELS = ("PERSON", "ORG", "GPE")
KINDS = ("direct", "partial", "indirect")
PATTERNS = (
    "trailing-cue",
    "inverted-cue",
    "colon-cue",
    "comma-cue",
    "title-cue",
    "org-speaker",
    "split",
    "multi-paragraph",
    "pronoun",
    "partial",
    "continuation",
    "indirect",
)


def occurs(name: str, text: str) -> bool:
    """True if name occurs in text as a whole word (not inside a longer word)."""
    return re.search(r"(?<![\w])" + re.escape(name) + r"(?![\w])", text) is not None


def check_entities(aid: str, entities: list[dict], text: str) -> list[str]:
    problems = []
    canon = Counter(e["canonical"] for e in entities)
    problems += [f"{aid}: entity {c!r} listed twice" for c, k in canon.items() if k > 1]
    for e in entities:
        if e["label"] not in LABELS:
            problems.append(f"{aid}: bad label {e['label']}")
        if not any(occurs(s, text) for s in [e["canonical"], *e["aliases"]]):
            problems.append(f"{aid}: entity {e['canonical']!r} not in headline or body")
        problems += [
            f"{aid}: alias {s!r} of {e['canonical']!r} not in text"
            for s in e["aliases"]
            if not occurs(s, text)
        ]
    return problems


def check_quotes(aid: str, quotes: list[dict], body: str, speakers: set[str]) -> list[str]:
    problems = []
    for q in quotes:
        if q["text"] not in body:
            problems.append(f"{aid}: quote not in body: {q['text'][:50]!r}")
        if q["kind"] not in KINDS:
            problems.append(f"{aid}: bad kind {q['kind']}")
        if q["pattern"] not in PATTERNS:
            problems.append(f"{aid}: bad pattern {q['pattern']}")
        if q["speaker"] is not None and q["speaker"] not in speakers:
            problems.append(f"{aid}: speaker {q['speaker']!r} is not a PERSON/ORG entity")
    return problems


def check_article(a: dict) -> list[str]:
    aid = a.get("id")
    missing = KEYS - a.keys()
    if missing:
        return [f"{aid}: missing keys {sorted(missing)}"]
    body = a["body"]
    words = len(body.split())
    problems = [] if 180 <= words <= 450 else [f"{aid}: body has {words} words"]
    problems += check_entities(aid, a["entities"], a["headline"] + "\n" + body)
    speakers = {e["canonical"] for e in a["entities"] if e["label"] in ("PERSON", "ORG")}
    return problems + check_quotes(aid, a["quotes"], body, speakers)


def summary(articles: list[dict]) -> tuple[list[str], list[str]]:
    """Lines to print and problems with the corpus-wide totals."""
    quotes = [q for a in articles for q in a["quotes"]]
    orgs = {
        (a["id"], e["canonical"]) for a in articles for e in a["entities"] if e["label"] == "ORG"
    }
    kinds = Counter(q["kind"] for q in quotes)
    patterns = Counter(q["pattern"] for q in quotes)
    labels = Counter(e["label"] for a in articles for e in a["entities"])
    aliases = sum(len(e["aliases"]) for a in articles for e in a["entities"])
    by_org = sum(1 for a in articles for q in a["quotes"] if (a["id"], q["speaker"]) in orgs)
    words = [len(a["body"].split()) for a in articles]
    straight = sum(1 for a in articles if '"' in a["body"])
    lines = [
        f"articles: {len(articles)} (body words {min(words)}-{max(words)})",
        f"articles with straight double quotes: {straight}",
        f"articles with notes: {[a['id'] for a in articles if 'notes' in a]}",
        f"entities: {sum(labels.values())} ({aliases} aliases)",
        *(f"  {label}: {labels[label]}" for label in LABELS),
        f"quotes: {len(quotes)}",
        *(f"  {kind}: {kinds[kind]}" for kind in KINDS),
        "patterns:",
        *(f"  {p}: {patterns[p]}" for p in PATTERNS),
        f"quotes with an ORG speaker: {by_org}",
        f"quotes with speaker null: {sum(1 for q in quotes if q['speaker'] is None)}",
    ]
    problems = [f"pattern {p} used {patterns[p]} times (<6)" for p in PATTERNS if patterns[p] < 6]
    if kinds["direct"] + kinds["partial"] < 130:
        problems.append("fewer than 130 direct+partial quotes")
    if kinds["indirect"] < 20:
        problems.append("fewer than 20 indirect quotes")
    return lines, problems


def main() -> int:
    problems: list[str] = []
    articles = []
    for n, line in enumerate(CORPUS.read_text(encoding="utf-8").splitlines(), 1):
        try:
            articles.append(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: {exc}")
    ids = Counter(a.get("id") for a in articles)
    problems += [f"duplicate id {i}" for i, c in ids.items() if c > 1]
    for a in articles:
        problems += check_article(a)
    lines, totals = summary(articles)
    problems += totals
    out = "\n".join(lines)
    out += "\n\nPROBLEMS:\n  " + "\n  ".join(problems) if problems else "\n\nall checks passed"
    sys.stdout.write(out + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
