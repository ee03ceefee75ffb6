"""Cleaning wire copy: boilerplate, crumbs, repeated headlines, bylines, datelines.

Pure functions over text, used by :mod:`transforms.parse` for both scraped text
pages and the bodies of JSON articles.

Example:
    page = clean_page(text)            # headline, byline, dateline, paragraphs
    body = clean_body(json_body)       # byline, dateline, paragraphs
    content_hash(page.body)            # equal for copies that differ in layout only
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CleanText",
    "clean_body",
    "clean_page",
    "content_hash",
    "count_words",
    "is_boilerplate",
    "normalize_for_hash",
    "normalize_line",
    "split_byline",
    "split_dateline",
]

# Characters that carry no text: zero-width spaces and joiners, BOM, soft hyphen,
# bidi marks. Removed before anything else so they cannot hide boilerplate.
# (Regular expressions, not str.translate: translate with a mapping is ~20x slower.)
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f]")
_SPACES = re.compile(r"\s+")

# A line that is boilerplate in its entirety (matched case-insensitively after
# normalisation). Short interface words, share buttons and counters.
_BOILERPLATE_LINE = re.compile(
    r"""^(?:
        share(?:\s+(?:this|on\s+\w+))?(?:\s+(?:article|story|page))? | shares? |
        advertisement | advert | ad | sponsored(?:\s+content)? | promoted |
        read\s+more | read\s+next | more | related | more\s+on\s+this\s+story |
        related\s+(?:articles|stories|coverage|content|topics) | see\s+also |
        \d[\d,.]*\s*k? | \d[\d,.]*\s*k?\s+comments? | comments? | view\s+comments |
        leave\s+a\s+comment |
        print | email | e-mail | facebook | twitter | x | whatsapp | linkedin | reddit |
        telegram | copy\s+link | link\s+copied | save | bookmark |
        skip\s+to\s+(?:main\s+)?content | menu | home | search | back\s+to\s+top |
        top\s+stories | trending(?:\s+now)? | most\s+read | most\s+popular | live |
        listen(?:\s+to\s+this\s+article)?(?:\s+\d+\s+min)? | \d+\s+min(?:ute)?s?\s+read |
        sign\s+up | subscribe | log\s*in | sign\s+in | close | video | watch | photo | image |
        (?:photo|image|video)\s*:.{0,80} | (?:file\s+)?photo\s+by\s+.{0,80}
    )[.:]?$""",
    re.IGNORECASE | re.VERBOSE,
)

# Lines that start like boilerplate and stay short: cross-links, footers,
# newsletter prompts, timestamps.
_BOILERPLATE_PREFIX = re.compile(
    r"""^(?:
        (?:read\s+more|read\s+next|also\s+read|related|see\s+also|recommended|watch|listen)
            \s*[:|»>–—-] |
        (?:©|\(c\)\s) |
        copyright\s+(?:©\s*)?(?:\d{4}|the\b) |
        this\s+(?:material|article|story)\s+may\s+not\s+be\s+(?:published|reproduced) |
        (?:sign\s+up|subscribe)\b.{0,80}\b(?:newsletter|updates|alerts|free)\b |
        follow\s+(?:us|\w+(?:\s\w+)?)\s+on\s |
        click\s+here\b |
        (?:updated|published|posted|last\s+updated|first\s+published)\b.{0,60}\d |
        we\s+use\s+cookies\b |
        get\s+(?:the\s+)?(?:latest|breaking)\b.{0,60}\b(?:app|newsletter|alerts)\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_ALL_RIGHTS_RESERVED = re.compile(r"\ball\s+rights\s+reserved\b", re.IGNORECASE)
_MAX_BOILERPLATE_LENGTH = 300

# Agency credits: facts about production, not about the story. Kept out of the
# body so that two different stories by the same desk never look alike.
_CREDIT_LINE = re.compile(
    r"""^\(?(?:
        (?:(?:additional\s+)?reporting|writing|editing|compiled|produced)\s+by\b.* |
        .*\bcontributed\s+(?:to\s+)?(?:this\s+)?(?:report|reporting|story)\.?
    )\)?$""",
    re.IGNORECASE | re.VERBOSE,
)

# "By Jane Roe, Associated Press" / "By JANE ROE and John Doe | Reuters": after
# "By", only capitalised words and the joiners below. A lower-case word rejects
# the line, so "By Tuesday, the ministers had agreed" stays in the body.
_BYLINE = re.compile(r"^By\s+(?P<who>.+?)\s*$")
_BYLINE_JOINERS = frozenset(
    {
        "and",
        "&",
        "|",
        ",",
        "the",
        "of",
        "de",
        "del",
        "der",
        "den",
        "van",
        "von",
        "da",
        "du",
        "la",
        "le",
        "al",
        "bin",
    }
)
_BYLINE_TOKEN = re.compile(r"[,|&]|[^\s,|&]+")
_MAX_BYLINE_LENGTH = 160

# "BRUSSELS — ", "KYIV, Ukraine (AP) — ", "LONDON, Nov 28 (Reuters) - ": a place
# in capitals, an optional region, date and agency, then a dash.
_DATELINE = re.compile(
    r"""^(?P<place>
            [A-Z][A-Z.'’-]+(?:\s+[A-Z][A-Z.'’-]+)*
            (?:,\s+[A-Z][A-Za-z.'’-]+(?:\s+[A-Z][A-Za-z.'’-]+)*)?
        )
        (?:,\s+[A-Z][a-z]{2,8}\.?\s+\d{1,2})?
        \s*(?:\([^()]{1,40}\))?
        \s*(?:—|–|--?)\s+""",
    re.VERBOSE,
)

# Headlines are short; a first line longer than this is a paragraph, not a title.
_MAX_HEADLINE_LENGTH = 250
# Crumbs and repeated headlines sit within the first few lines of a page.
_HEAD_WINDOW = 8

_TO_ASCII = {
    "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"',
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'",
    "—": "-", "–": "-", "‐": "-", "‑": "-", "‒": "-",
}  # fmt: skip
_FANCY_PUNCTUATION = re.compile("[" + "".join(_TO_ASCII) + "]")
_WORD = re.compile(r"\w+(?:['’.-]\w+)*")


@dataclass(frozen=True)
class CleanText:
    """What cleaning recovers from a page or a body."""

    headline: str | None
    byline: str | None
    dateline: str | None
    paragraphs: tuple[str, ...]

    @property
    def body(self) -> str:
        """Paragraphs joined by blank lines: the text that offsets point into."""
        return "\n\n".join(self.paragraphs)


def normalize_line(line: str) -> str:
    """NFC, invisible characters removed, runs of whitespace made one space."""
    line = _INVISIBLE.sub("", unicodedata.normalize("NFC", line))
    return _SPACES.sub(" ", line).strip()


def is_boilerplate(line: str) -> bool:
    """Whether a normalised line is page furniture rather than article text."""
    if len(line) > _MAX_BOILERPLATE_LENGTH:
        return False
    return bool(
        _BOILERPLATE_LINE.match(line)
        or _BOILERPLATE_PREFIX.match(line)
        or _ALL_RIGHTS_RESERVED.search(line)
        or _CREDIT_LINE.match(line)
    )


def split_byline(line: str) -> str | None:
    """The byline's names if ``line`` is a byline (``By …``), else None."""
    if len(line) > _MAX_BYLINE_LENGTH:
        return None
    match = _BYLINE.match(line)
    if not match:
        return None
    tokens = _BYLINE_TOKEN.findall(match["who"])
    names = [token for token in tokens if token not in _BYLINE_JOINERS]
    if not names or not all(token[0].isupper() for token in names):
        return None
    return match["who"]


def split_dateline(paragraph: str) -> tuple[str | None, str]:
    """Split ``"BRUSSELS — On Tuesday…"`` into ``("BRUSSELS", "On Tuesday…")``."""
    match = _DATELINE.match(paragraph)
    if not match:
        return None, paragraph
    return match["place"], paragraph[match.end() :]


def clean_page(text: str) -> CleanText:
    """Clean a scraped text page: the first lines hold the headline and crumbs."""
    lines = _content_lines(text.splitlines())
    byline, lines = _take_byline(lines)
    headline, lines = _take_headline(lines)
    dateline, paragraphs = _take_dateline(lines)
    return CleanText(headline, byline, dateline, tuple(paragraphs))


def clean_body(text: str, headline: str | None = None) -> CleanText:
    """Clean an article body given apart from its headline (JSON articles)."""
    lines = _content_lines(text.splitlines())
    byline, lines = _take_byline(lines)
    if headline:
        lines = _drop_repeated_headline(lines, headline)
    dateline, paragraphs = _take_dateline(lines)
    return CleanText(headline, byline, dateline, tuple(paragraphs))


def normalize_for_hash(text: str) -> str:
    """Fold what copies differ in without differing in content.

    Unicode compatibility forms, quote marks and dashes, case, whitespace.
    """
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    text = _FANCY_PUNCTUATION.sub(lambda match: _TO_ASCII[match.group()], text)
    return _SPACES.sub(" ", text.casefold()).strip()


def content_hash(body: str) -> str:
    """BLAKE2b-128 of the normalised body, hex: equal for exact copies."""
    return hashlib.blake2b(normalize_for_hash(body).encode(), digest_size=16).hexdigest()


def count_words(text: str) -> int:
    """Words as a reader counts them: ``U.S.``, ``Kyiv’s`` and ``well-known`` are one each."""
    return sum(1 for _ in _WORD.finditer(text))


def _content_lines(lines: Iterable[str]) -> list[str]:
    normalised = (normalize_line(line) for line in lines)
    return [line for line in normalised if line and not is_boilerplate(line)]


def _take_byline(lines: list[str]) -> tuple[str | None, list[str]]:
    for index, line in enumerate(lines):
        who = split_byline(line)
        if who:
            return who, lines[:index] + lines[index + 1 :]
    return None, lines


def _take_headline(lines: list[str]) -> tuple[str | None, list[str]]:
    """Find the headline among the first lines, then drop crumbs and repeats.

    A line that is repeated, or that another early line ends with (crumbs glued
    in front), is the headline; otherwise the first line is, if short enough.
    """
    if not lines:
        return None, lines
    head = lines[:_HEAD_WINDOW]
    headline = next(
        (
            line
            for index, line in enumerate(head)
            if len(line) <= _MAX_HEADLINE_LENGTH
            and any(
                other == line or other.endswith(" " + line)
                for other_index, other in enumerate(head)
                if other_index != index
            )
        ),
        None,
    )
    if headline is None:
        if len(lines[0]) > _MAX_HEADLINE_LENGTH:
            return None, lines
        headline = lines[0]
    return headline, _drop_repeated_headline(lines, headline)


def _drop_repeated_headline(lines: list[str], headline: str) -> list[str]:
    head = [
        line
        for line in lines[:_HEAD_WINDOW]
        if line != headline and not line.endswith(" " + headline)
    ]
    return head + lines[_HEAD_WINDOW:]


def _take_dateline(lines: list[str]) -> tuple[str | None, list[str]]:
    if not lines:
        return None, lines
    dateline, first = split_dateline(lines[0])
    return dateline, ([first] if first else []) + lines[1:]
