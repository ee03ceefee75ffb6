"""The NLP core: entities and quotations from one spaCy pass over a batch of articles.

spaCy is the expensive part of the pipeline, so it runs once per article for both
features: a batch of articles goes through ``nlp.pipe`` (NER and the wire-copy
fixes only) and each article's docs give its entity records and, linked to the
same canonical names, its quotations and speakers. No Beam here: the NLP step
(:mod:`transforms.annotate`) runs it in the worker, and spaCy's helper processes
(:mod:`transforms.nlp_processes`) run it without loading Beam.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from spacy.language import Language
from spacy.tokens import Doc

from transforms.entities import chunks, link_mentions, mentions_of_linked, records_of_linked
from transforms.quotes import find_quotes
from transforms.records import Article

__all__ = ["annotate", "annotate_batch"]

ENGLISH = "en"


def annotate(
    article: Article,
    headline: Doc | None,
    body: list[tuple[int, Doc]],
    *,
    entities: bool = True,
    quotes: bool = True,
) -> Article:
    """The article with ``entities`` and/or ``quotes`` filled from its parsed headline and body."""
    linked = link_mentions(headline, body, article.dateline)  # once, for both
    changes: dict[str, tuple] = {}
    if entities:
        changes["entities"] = records_of_linked(linked)
    if quotes:
        changes["quotes"] = tuple(find_quotes(article.body, mentions_of_linked(linked)))
    return dataclasses.replace(article, **changes)


def annotate_batch(
    nlp: Language, articles: Sequence[Article], *, entities: bool = True, quotes: bool = True
) -> list[Article]:
    """The articles in order, the English ones annotated from one ``nlp.pipe`` over their texts."""
    texts: list[str] = []
    owners: list[tuple[int, int | None]] = []  # (article, body offset; None for the headline)
    for number, article in enumerate(articles):
        if article.language != ENGLISH:
            continue  # not run through an English model: nothing rather than wrong answers
        if article.headline:
            texts.append(article.headline)
            owners.append((number, None))
        for offset, text in chunks(article.body):
            texts.append(text)
            owners.append((number, offset))
    headlines: dict[int, Doc] = {}
    bodies: dict[int, list[tuple[int, Doc]]] = {}
    for (number, offset), doc in zip(owners, nlp.pipe(texts, batch_size=64), strict=True):
        if offset is None:
            headlines[number] = doc
        else:
            bodies.setdefault(number, []).append((offset, doc))
    return [
        annotate(article, headlines.get(number), bodies[number], entities=entities, quotes=quotes)
        if number in bodies
        else article
        for number, article in enumerate(articles)
    ]
