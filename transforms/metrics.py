"""Per-step counters and throttled progress logs, written once for every DoFn.

Example:
    metrics = StepMetrics("parse")     # in DoFn.setup()
    metrics.received(); metrics.ok()   # counters wirenews:parse.received, parse.ok
"""

from __future__ import annotations

import logging
import time

from apache_beam.metrics import Metrics

__all__ = ["NAMESPACE", "StepMetrics"]

NAMESPACE = "wirenews"
LOGGER = logging.getLogger(__name__)
# A long run logs where each step is at most this often, per worker.
_PROGRESS_INTERVAL_SECONDS = 10.0


class StepMetrics:
    """Counters ``<step>.received``, ``<step>.ok``, ``<step>.dead_lettered``, and progress."""

    def __init__(self, step: str) -> None:
        self._step = step
        self._received = Metrics.counter(NAMESPACE, f"{step}.received")
        self._ok = Metrics.counter(NAMESPACE, f"{step}.ok")
        self._dead_lettered = Metrics.counter(NAMESPACE, f"{step}.dead_lettered")
        self._count = 0
        # Where the last progress line left off: its count and time.
        self._logged_count = 0
        self._logged_at = time.monotonic()

    def received(self, count: int = 1) -> None:
        """Count records that entered the step, logging progress now and then.

        The rate is since the previous line: a stream says how fast it went lately,
        not its average since it started.
        """
        self._received.inc(count)
        self._count += count
        now = time.monotonic()
        if now >= self._logged_at + _PROGRESS_INTERVAL_SECONDS:
            seconds = now - self._logged_at
            rate = (self._count - self._logged_count) / seconds
            self._logged_count, self._logged_at = self._count, now
            LOGGER.info(
                "%s: %s records so far (%.1f/s over the last %.0f s)",
                self._step,
                f"{self._count:,}",
                rate,
                seconds,
            )

    def ok(self, count: int = 1) -> None:
        """Count records the step passed on."""
        self._ok.inc(count)

    def dead_lettered(self, count: int = 1) -> None:
        """Count records the step sent to the dead letters."""
        self._dead_lettered.inc(count)

    def count(self, name: str, count: int = 1) -> None:
        """Count something particular to the step, as ``<step>.<name>``."""
        Metrics.counter(NAMESPACE, f"{self._step}.{name}").inc(count)
