"""The NLP step: entities and quotations from one spaCy pass per article.

The Beam side of :mod:`transforms.annotation`: batches of articles, the model
loaded once per worker process (or spaCy in helper processes beside it), and
the step's counters.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator, Sequence

import apache_beam as beam
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from transforms.annotation import annotate_batch
from transforms.entities import entity_pipeline
from transforms.metrics import StepMetrics
from transforms.nlp import DEFAULT_MODEL, check_model
from transforms.nlp_processes import shared_annotator
from transforms.records import Article

__all__ = ["AnnotateArticles", "ExtractEntities", "ExtractQuotes"]

# BatchElements fits batch sizes to its timings with numpy, which warns, to the job's
# log, of a poorly conditioned fit while a stream's first batches come in alike. Set
# here, after numpy's import (which puts its own "always" first), in every worker
# that runs the step.
warnings.filterwarnings("ignore", message="Polyfit may be poorly conditioned")


class _AnnotateFn(beam.DoFn):
    """A batch of articles through ``nlp.pipe`` at once; the model is loaded once per process.

    With ``processes``, spaCy runs in that many helper processes of the worker
    instead (:class:`transforms.nlp_processes.AnnotatorProcesses`).
    """

    def __init__(self, model: str, *, entities: bool, quotes: bool, processes: int) -> None:
        self._model = model
        self._entities = entities
        self._quotes = quotes
        self._processes = processes

    def setup(self) -> None:
        self._metrics = StepMetrics("nlp")
        self._annotate: Callable[[Sequence[Article]], list[Article]]
        if self._processes:
            helpers = shared_annotator(
                self._processes, self._model, entities=self._entities, quotes=self._quotes
            )
            self._annotate = helpers.annotate
        else:
            self._annotate = functools.partial(
                annotate_batch,
                entity_pipeline(self._model),
                entities=self._entities,
                quotes=self._quotes,
            )

    def process(self, stamped: list[tuple[Article, Timestamp]]) -> Iterator[TimestampedValue]:
        self._metrics.received(len(stamped))
        annotated = self._annotate([article for article, _timestamp in stamped])
        for article, (_article, timestamp) in zip(annotated, stamped, strict=True):
            self._metrics.ok()
            yield TimestampedValue(article, timestamp)


class AnnotateArticles(beam.PTransform):
    """``PCollection[Article]`` → the same articles with entities and quotes (English only).

    ``processes``: spaCy runs in that many helper processes per worker (0: in the
    worker). Worth it where one Python process runs every step, as a stream on
    the local runners does: there the NLP and dedup share one interpreter lock.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        entities: bool = True,
        quotes: bool = True,
        batch_size: int = 64,
        processes: int = 0,
    ) -> None:
        super().__init__()
        check_model(model)
        self._model = model
        self._entities = entities
        self._quotes = quotes
        self._batch_size = batch_size
        self._processes = processes

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        """Batch the articles and run each batch through spaCy once."""
        return (
            articles
            # Batching stamps a batch with its window's end: keep each article's own time.
            | "KeepTime" >> beam.Map(lambda article, t=beam.DoFn.TimestampParam: (article, t))
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self._batch_size)
            | "NLP"
            >> beam.ParDo(
                _AnnotateFn(
                    self._model,
                    entities=self._entities,
                    quotes=self._quotes,
                    processes=self._processes,
                )
            )
        )


class ExtractEntities(AnnotateArticles):
    """Entities alone (see :class:`AnnotateArticles`, which the job uses for both)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64) -> None:
        super().__init__(model, entities=True, quotes=False, batch_size=batch_size)


class ExtractQuotes(AnnotateArticles):
    """Quotes alone; the NER still runs, since speakers are entities."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64) -> None:
        super().__init__(model, entities=False, quotes=True, batch_size=batch_size)
