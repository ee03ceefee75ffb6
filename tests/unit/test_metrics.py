"""Each step's progress lines (transforms.metrics)."""

import logging

import pytest

from transforms import metrics
from transforms.metrics import StepMetrics


def test_progress_says_how_fast_the_step_went_since_its_last_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not the average since the start, which a stream's idle hours bring down to 0/s."""
    clock = [1000.0]
    monkeypatch.setattr(metrics.time, "monotonic", lambda: clock[0])
    step = StepMetrics("nlp")
    with caplog.at_level(logging.INFO, logger=metrics.LOGGER.name):
        for at, count in ((1000.0, 5), (1100.0, 1), (1105.0, 1), (1115.0, 20)):
            clock[0] = at
            step.received(count)
    assert [record.getMessage() for record in caplog.records] == [
        "nlp: 6 records so far (0.1/s over the last 100 s)",
        "nlp: 27 records so far (1.4/s over the last 15 s)",
    ]
