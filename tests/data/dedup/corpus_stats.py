"""Validate tests/data/dedup/articles.jsonl and print its label counts and similarity figures.

Run from the repository root:  .venv/bin/python tests/data/dedup/corpus_stats.py
Exits non-zero when a check fails. Standard library only.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "articles.jsonl"
KEYS = ["id", "story", "role", "source", "published_at", "headline", "body"]
POSITIVE = ["original", "republished", "rewrite", "write-through"]
NEGATIVE = ["follow-up", "rival", "same-statement", "unrelated"]
ROLES = POSITIVE + NEGATIVE
# Story labels of hard negatives name the story they imitate: s03-fu, s03-rv, s03-ss.
RELATED = re.compile(r"^(s\d+)-(fu|rv|ss)$")
SUFFIX_ROLE = {"fu": "follow-up", "rv": "rival", "ss": "same-statement"}
SHINGLE = 5


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _line_errors(n: int, a: object) -> list[str]:
    if not isinstance(a, dict) or list(a) != KEYS:
        return [f"line {n}: keys must be exactly {KEYS}"]
    if not all(isinstance(a[k], str) and a[k].strip() for k in KEYS):
        return [f"line {n}: empty or non-string field"]
    errors = []
    if a["role"] not in ROLES:
        errors.append(f"line {n}: unknown role {a['role']!r}")
    try:
        datetime.strptime(a["published_at"] + "+0000", "%Y-%m-%dT%H:%M:%SZ%z")
    except ValueError:
        errors.append(f"line {n}: published_at is not YYYY-MM-DDTHH:MM:SSZ")
    if any(not p.strip() for p in a["body"].split("\n\n")):
        errors.append(f"line {n}: empty paragraph")
    return errors


def _story_errors(story: str, roles: list[str], stories: dict) -> list[str]:
    errors = []
    if any(r in POSITIVE for r in roles):
        if roles.count("original") != 1 or any(r in NEGATIVE for r in roles):
            errors.append(f"story {story}: needs one original and no negative roles: {roles}")
    elif len(roles) != 1:
        errors.append(f"story {story}: a negative story is a single article: {roles}")
    m = RELATED.match(story)
    if m and (roles != [SUFFIX_ROLE[m[2]]] or m[1] not in stories):
        errors.append(f"story {story}: expected one {SUFFIX_ROLE[m[2]]} of existing {m[1]}")
    if not m and roles == ["unrelated"] and not story.startswith("u"):
        errors.append(f"story {story}: unrelated stories are labelled uNN")
    return errors


def load(path: Path = CORPUS) -> list[dict]:
    """Parse and validate the corpus; exit with the list of problems if there are any."""
    articles, errors = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            a = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: not JSON ({e})")
            continue
        errors += _line_errors(n, a)
        articles.append(a)
    if errors:
        sys.exit("\n".join(errors))
    errors += [f"duplicate id {i}" for i, c in Counter(a["id"] for a in articles).items() if c > 1]
    stories = defaultdict(list)
    for a in articles:
        stories[a["story"]].append(a["role"])
    for story, roles in stories.items():
        errors += _story_errors(story, roles, stories)
    if errors:
        sys.exit("\n".join(errors))
    return articles


def shingles(text: str, k: int = SHINGLE) -> set[tuple[str, ...]]:
    """Word k-shingles of lower-cased text (words are runs of \\w)."""
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}


def similarity(a: set, b: set) -> tuple[float, float]:
    """(Jaccard, containment = overlap / size of the smaller set)."""
    inter = len(a & b)
    return inter / len(a | b), inter / min(len(a), len(b))


def pair_kind(a: dict, b: dict) -> str:
    if a["story"] == b["story"]:
        return "same story"
    for x, y in ((a, b), (b, a)):
        m = RELATED.match(x["story"])
        if m and y["story"] == m[1]:
            return f"{x['role']} vs its story"
    return "other different-story"


def main() -> None:
    articles = load()
    stories = Counter(a["story"] for a in articles)
    with_original = sum(1 for a in articles if a["role"] == "original")
    out(f"{len(articles)} articles, {len(stories)} story labels, {with_original} with an original")
    roles = Counter(a["role"] for a in articles)
    out("\n| role | articles |\n|---|---|")
    for r in ROLES:
        out(f"| {r} | {roles[r]} |")
    out(f"| total | {len(articles)} |")

    sh = {a["id"]: shingles(a["body"]) for a in articles}
    words = [len(re.findall(r"\w+", a["body"])) for a in articles if a["role"] == "original"]
    out(f"\noriginals: {min(words)}-{max(words)} words (body, incl. byline/credit lines)")

    groups = defaultdict(list)
    for a, b in itertools.combinations(articles, 2):
        j, c = similarity(sh[a["id"]], sh[b["id"]])
        kind = pair_kind(a, b)
        groups[kind].append((j, c, a["id"], b["id"]))
        if kind == "same story":
            rk = " / ".join(sorted([a["role"], b["role"]]))
            groups[f"  same story: {rk}"].append((j, c, a["id"], b["id"]))
        else:
            groups["all different-story"].append((j, c, a["id"], b["id"]))

    order = [
        "same story",
        *sorted(k for k in groups if k.startswith("  ")),
        "all different-story",
        "follow-up vs its story",
        "rival vs its story",
        "same-statement vs its story",
        "other different-story",
    ]
    out(f"\nword {SHINGLE}-shingles of the body; containment = overlap / smaller set\n")
    out("| pairs | n | Jaccard min | Jaccard max | containment min | containment max |")
    out("|---|---|---|---|---|---|")
    for k in order:
        js, cs = [x[0] for x in groups[k]], [x[1] for x in groups[k]]
        figures = " | ".join(f"{x:.3f}" for x in (min(js), max(js), min(cs), max(cs)))
        out(f"| {k.strip()} | {len(groups[k])} | {figures} |")

    same, diff = groups["same story"], groups["all different-story"]
    low = sum(j < 0.5 for j, *_ in same)
    high = sum(c > 0.3 for _, c, *_ in diff)
    out(f"\nsame-story pairs with Jaccard < 0.5: {low} of {len(same)}")
    out(f"different-story pairs with containment > 0.3: {high} of {len(diff)}")
    j, _, x, y = min(same)
    out(f"hardest same-story pair (lowest Jaccard): {x} / {y} ({j:.3f})")
    _, c, x, y = max(diff, key=lambda t: t[1])
    out(f"hardest different-story pair (highest containment): {x} / {y} ({c:.3f})")


if __name__ == "__main__":
    main()
