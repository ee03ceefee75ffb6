"""Kill and restart (issue #10): SIGKILL a streaming job three times while input flows.

Each restart uses the same consumer group, so it resumes from the committed offsets.
Dedup is on, as by default: the input holds distinct stories, a few exact copies and
some broken JSON, so all three outputs are in play. What must hold, wherever the
kills land: every input record is in its one output at least once (a copy may be an
article instead when a restart separated it from its committed original: the dedup
state died with the job); a record written twice is the same record; no committed
offset is ever ahead of what is in the files; each restart starts where the group
had committed; a killed job leaves no process behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.chaos import KillRestart

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ARTICLES = 300
GARBAGE_EVERY = 40


def test_three_kills_lose_nothing_and_commit_only_what_is_written(
    kafka_bootstrap: str, topic: str, tmp_path: Path, create_topic: Callable[[str, int], None]
) -> None:
    create_topic(topic, 2)
    verdict = KillRestart(
        kafka_bootstrap,
        topic,
        tmp_path,
        partitions=2,
        rate=5.0,
        limit=ARTICLES,
        kills=3,
        pause=(3.0, 10.0),
        seed=20261129,
        garbage_every=GARBAGE_EVERY,
        copy_every=25,
    ).run()
    print(verdict.figures())  # noqa: T201 - shown with -rP: what the kills did this time

    assert verdict.problems() == {}, verdict.figures()
    assert verdict.kills == 3
    assert verdict.kills_after_commits >= 2, "the kills must find offsets committed to check"
    expected, found = verdict.expected, verdict.comparison
    assert found.fed == ARTICLES
    assert expected["dead_letters"] == ARTICLES // GARBAGE_EVERY
    assert expected["duplicates"] >= 8
    assert found.dead_letters == expected["dead_letters"]
    # Every article is written; so is a copy whose original a restart had already committed.
    assert found.written == expected["articles"] + verdict.replayed_copies
    assert found.duplicates >= expected["duplicates"] - verdict.replayed_copies
