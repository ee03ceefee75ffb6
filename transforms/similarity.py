"""Near-duplicate detection's pure core: shingles, MinHash signatures, LSH bands, verification.

A republished wire story keeps most of its paragraphs; a next-day follow-up
reuses only a few background paragraphs under a new lede. So candidates found
by MinHash/LSH bands (and by long paragraphs shared verbatim) are verified with
more than one exact signal: word-shingle Jaccard; containment (overlap relative
to the shorter text, which catches truncated copies); paragraph coverage (the
share of the shorter text's paragraphs found in the other); and quotation
overlap (a follow-up brings new quotes, a copy keeps them).

Example:
    a, b = fingerprint(article_a), fingerprint(article_b)
    shared_bands(a, b)           # LSH candidates share at least one band
    verdict = compare(a, b)      # Verdict(duplicate=True, similarity=0.83, method="near")
"""

from __future__ import annotations

import re
import struct
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import rensa
import xxhash

__all__ = [
    "BANDS",
    "NUM_PERM",
    "SHINGLE_WORDS",
    "Fingerprint",
    "Verdict",
    "band_keys",
    "compare",
    "fingerprint",
    "original_first",
    "shingle_hashes",
    "words",
]

# Five-word shingles: long enough that shared stock phrases ("said in a
# statement on") rarely make two stories look alike, short enough that a few
# changed words leave most shingles intact.
SHINGLE_WORDS = 5
NUM_PERM = 128
# 32 bands of 4 rows: pairs above ~0.45 Jaccard almost always share a band, so
# heavily edited copies still become candidates; verification removes the rest.
BANDS = 32
ROWS = NUM_PERM // BANDS
# rensa's MinHash values are 32-bit.
_SIGNATURE = struct.Struct(f"<{NUM_PERM}I")
_BAND_BYTES = ROWS * _SIGNATURE.size // NUM_PERM
_SEED = 20241126
_WORD = re.compile(r"\w+")
# Paragraphs shorter than this many shingles (a one-line quote) say little.
_MIN_PARAGRAPH_SHINGLES = 3
# A paragraph counts as found in the other text when this share of its shingles is.
_PARAGRAPH_FOUND = 0.5

# Paragraphs of at least this many words also act as exact candidate keys: a
# heavy edit keeps many paragraphs verbatim even when its overall Jaccard is
# too low for the bands to catch it reliably.
_KEY_PARAGRAPH_WORDS = 15
# Quotations of at least this many characters: what people said is what a
# follow-up replaces and a copy keeps.
_QUOTATION = re.compile(r"[“\"]([^“”\"]{20,}?)[”\"]")

# Decision thresholds, measured on tests/data/dedup (see bench/dedup_quality.py):
# copies there reach containment and coverage >= 0.57, follow-ups stay <= 0.48.
JACCARD_SAME = 0.6
CONTAINMENT_SAME = 0.52
COVERAGE_SAME = 0.52
QUOTES_SAME = 0.5


@dataclass(frozen=True)
class Fingerprint:
    """What dedup needs of an article: order, exact hash, signature, and shingles."""

    id: str
    published_at: datetime | None
    content_hash: str
    signature: tuple[int, ...]
    paragraphs: tuple[frozenset[int], ...]
    paragraph_keys: tuple[str, ...]
    quotations: frozenset[int]

    @property
    def shingles(self) -> frozenset[int]:
        """Every shingle of the body."""
        return frozenset().union(*self.paragraphs)


@dataclass(frozen=True)
class Verdict:
    """Whether two articles are the same story, and how similar they are."""

    duplicate: bool
    similarity: float
    method: str


def words(text: str) -> list[str]:
    """Words, case and Unicode compatibility forms folded (punctuation is not part of a word)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def shingle_hashes(text: str) -> frozenset[int]:
    """64-bit hashes of the text's word shingles (the whole text if shorter than one)."""
    return _shingles(words(text))


def _shingles(tokens: list[str]) -> frozenset[int]:
    if len(tokens) < SHINGLE_WORDS:
        return (
            frozenset({xxhash.xxh3_64_intdigest(" ".join(tokens).encode())})
            if tokens
            else frozenset()
        )
    return frozenset(
        xxhash.xxh3_64_intdigest(" ".join(tokens[i : i + SHINGLE_WORDS]).encode())
        for i in range(len(tokens) - SHINGLE_WORDS + 1)
    )


def fingerprint(
    article_id: str, body: str, content_hash: str, published_at: datetime | None
) -> Fingerprint:
    """The article's fingerprint; paragraphs are the body's blank-line-separated blocks."""
    tokenized = [words(p) for p in body.split("\n\n") if p.strip()]
    paragraphs = tuple(_shingles(tokens) for tokens in tokenized)
    minhash = rensa.RMinHash(num_perm=NUM_PERM, seed=_SEED)
    everything = frozenset().union(*paragraphs)
    minhash.update([str(h) for h in everything] or [""])
    paragraph_keys = tuple(
        sorted(
            {
                xxhash.xxh3_64_hexdigest(" ".join(tokens).encode())
                for tokens in tokenized
                if len(tokens) >= _KEY_PARAGRAPH_WORDS
            }
        )
    )
    quotations = frozenset().union(*(shingle_hashes(quote) for quote in _QUOTATION.findall(body)))
    return Fingerprint(
        id=article_id,
        published_at=published_at,
        content_hash=content_hash,
        signature=tuple(minhash.digest()),
        paragraphs=paragraphs,
        paragraph_keys=paragraph_keys,
        quotations=quotations,
    )


def band_keys(print_: Fingerprint) -> list[str]:
    """Candidate keys: the exact content hash, one per LSH band, one per long paragraph."""
    keys = [f"exact:{print_.content_hash}"]
    keys.extend(f"paragraph:{key}" for key in print_.paragraph_keys)
    # A band's key hashes its rows' bytes: packing once is 5x faster than a repr per band.
    packed = _SIGNATURE.pack(*print_.signature)
    keys.extend(
        f"{band}:{xxhash.xxh3_64_hexdigest(packed[start : start + _BAND_BYTES])}"
        for band, start in enumerate(range(0, len(packed), _BAND_BYTES))
    )
    return keys


def original_first(print_: Fingerprint) -> tuple[bool, datetime | None, str]:
    """Sort key for "which copy is the original": earliest published, then smallest id."""
    return (print_.published_at is None, print_.published_at, print_.id)


def compare(a: Fingerprint, b: Fingerprint) -> Verdict:
    """Verify a candidate pair with exact similarities, not the MinHash estimate."""
    if a.content_hash == b.content_hash:
        return Verdict(duplicate=True, similarity=1.0, method="exact")
    left, right = a.shingles, b.shingles
    if not left or not right:
        return Verdict(duplicate=False, similarity=0.0, method="near")
    overlap = len(left & right)
    jaccard = overlap / len(left | right)
    containment = overlap / min(len(left), len(right))
    shorter, longer = (a, b) if len(left) <= len(right) else (b, a)
    coverage = paragraph_coverage(shorter.paragraphs, longer.shingles)
    quotes = (
        len(shorter.quotations & longer.quotations) / len(shorter.quotations)
        if shorter.quotations
        else 1.0
    )
    duplicate = jaccard >= JACCARD_SAME or (
        containment >= CONTAINMENT_SAME and coverage >= COVERAGE_SAME and quotes >= QUOTES_SAME
    )
    return Verdict(
        duplicate=duplicate, similarity=round(max(jaccard, containment), 4), method="near"
    )


def paragraph_coverage(paragraphs: tuple[frozenset[int], ...], other: frozenset[int]) -> float:
    """Share of the paragraphs' shingles that sit in paragraphs mostly found in ``other``."""
    total = found = 0
    for shingles in paragraphs:
        if len(shingles) < _MIN_PARAGRAPH_SHINGLES:
            continue
        total += len(shingles)
        if len(shingles & other) >= _PARAGRAPH_FOUND * len(shingles):
            found += len(shingles)
    return found / total if total else 0.0
