"""A seeded corpus of synthetic wire articles for the benchmarks.

Stories are new combinations of real sentences (from the seeds and the labelled
sets in tests/data), so spaCy sees real English with real names and quotes,
while two stories rarely share more than a sentence. A known share of the
articles are republished copies of earlier ones: another outlet, a trimmed
ending, a few changed words.

    from corpus import synthetic_articles  # bench scripts run from this folder
    articles = synthetic_articles(2000, copy_share=0.15, seed=7)
"""

from __future__ import annotations

import json
import random
import re
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("Northwire", "Baltic Morning Post", "Harbour Herald", "Continental Wire", "Daily Ledger")
_SENTENCE_END = re.compile(r"(?<=[.?!”\"])\s+(?=[A-Z“\"])")


@cache
def sentences() -> tuple[str, ...]:
    """Real wire sentences from the labelled sets: long enough to carry a story."""
    found: list[str] = []
    for corpus in ("tests/data/nlp/articles.jsonl", "tests/data/dedup/articles.jsonl"):
        for line in (REPO / corpus).read_text(encoding="utf-8").splitlines():
            body = json.loads(line)["body"]
            for paragraph in body.split("\n\n"):
                found.extend(s for s in _SENTENCE_END.split(paragraph) if len(s.split()) >= 8)
    return tuple(found)


def _story(rng: random.Random, number: int) -> dict[str, str]:
    pool = sentences()
    paragraphs = []
    for _ in range(rng.randint(6, 12)):
        paragraphs.append(" ".join(rng.choice(pool) for _ in range(rng.randint(1, 3))))
    return {
        "id": f"bench-{number:07d}",
        "source": rng.choice(SOURCES),
        "published_at": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
        "headline": " ".join(paragraphs[0].split()[:12]),
        "body": "\n\n".join(paragraphs),
    }


def _republished(rng: random.Random, original: dict[str, str], number: int) -> dict[str, str]:
    paragraphs = original["body"].split("\n\n")
    kept = paragraphs[: max(3, len(paragraphs) - rng.randint(0, 2))]
    words = "\n\n".join(kept).split(" ")
    for _ in range(3):
        at = rng.randrange(len(words))
        words[at] = rng.choice(("also", "now", "still", "again"))
    return {
        **original,
        "id": f"bench-{number:07d}",
        "source": rng.choice([s for s in SOURCES if s != original["source"]]),
        "body": " ".join(words),
    }


def synthetic_articles(n: int, *, copy_share: float = 0.15, seed: int = 7) -> list[dict[str, str]]:
    """``n`` articles as JSON-ready dicts; about ``copy_share`` of them copy an earlier one."""
    rng = random.Random(seed)
    articles: list[dict[str, str]] = []
    for number in range(n):
        if articles and rng.random() < copy_share:
            articles.append(_republished(rng, rng.choice(articles), number))
        else:
            articles.append(_story(rng, number))
    return articles


def write_jsonl(articles: list[dict[str, str]], path: Path) -> Path:
    """The articles as JSON Lines, as ``wirenews run`` and ``wirenews feed`` read them."""
    path.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), "utf-8")
    return path
