"""spaCy in helper processes (transforms.nlp_processes): same answers, and no helper left behind."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import article_json
from transforms.annotation import annotate_batch
from transforms.entities import entity_pipeline
from transforms.nlp import DEFAULT_MODEL
from transforms.nlp_processes import AnnotatorProcesses
from transforms.parse import parse_record
from transforms.records import Article, MediaType, Origin, RawRecord

ROOT = Path(__file__).resolve().parents[2]
LABELLED = ROOT / "tests" / "data" / "nlp" / "articles.jsonl"
NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)


def labelled_articles(count: int) -> list[Article]:
    documents = [json.loads(line) for line in LABELLED.read_text().splitlines()[:count]]
    return [
        parse_record(
            RawRecord(
                article_json(id=d["id"], headline=d["headline"], body=d["body"]),
                Origin.file(str(LABELLED)),
                MediaType.JSON,
            ),
            ingested_at=NOW,
        )
        for d in documents
    ]


@pytest.fixture(scope="module")
def helpers() -> Iterator[AnnotatorProcesses]:
    started = AnnotatorProcesses(2, DEFAULT_MODEL)
    yield started
    started.close()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (dead, not yet reaped) is gone for our purpose."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_helpers_annotate_a_batch_as_the_worker_would(helpers: AnnotatorProcesses) -> None:
    articles = labelled_articles(12)
    in_worker = annotate_batch(entity_pipeline(DEFAULT_MODEL), articles)
    assert helpers.annotate(articles) == in_worker  # split between two helpers, in order
    assert sum(len(a.entities) for a in in_worker) > 50
    assert sum(len(a.quotes) for a in in_worker) > 20


def test_a_helper_never_loads_beam(helpers: AnnotatorProcesses) -> None:
    """Beam is the worker's: a helper that imported it would hold ~50 MB more for nothing."""
    helpers.annotate(labelled_articles(4))
    for pid in helpers.pids():
        assert "/apache_beam/" not in Path(f"/proc/{pid}/maps").read_text()


def test_helpers_ignore_ctrl_c_and_a_killed_one_is_replaced(helpers: AnnotatorProcesses) -> None:
    articles = labelled_articles(3)
    expected = helpers.annotate(articles)
    started = helpers.pids()
    for pid in started:  # what a terminal's Ctrl-C sends the whole process group
        os.kill(pid, signal.SIGINT)
    assert helpers.annotate(articles) == expected
    assert helpers.pids() == started
    os.kill(started[1], signal.SIGKILL)
    assert helpers.annotate(articles) == expected
    assert started[1] not in helpers.pids()
    assert len(helpers.pids()) == 2


def test_helpers_end_when_the_worker_that_started_them_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys, time\n"
        "from transforms.nlp_processes import AnnotatorProcesses\n"
        "if __name__ == '__main__':\n"
        f"    helpers = AnnotatorProcesses(1, {DEFAULT_MODEL!r})\n"
        "    print(*helpers.pids(), flush=True)\n"
        "    time.sleep(600)\n"
    )
    worker = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        [helper] = map(int, worker.stdout.readline().split())
        assert alive(helper)
        worker.kill()  # the worker alone, as an out-of-memory kill would
        worker.wait(timeout=10)
        deadline = time.monotonic() + 15
        while alive(helper) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(helper), "the helper outlived its worker"
    finally:
        worker.kill()
        worker.stdout.close()
