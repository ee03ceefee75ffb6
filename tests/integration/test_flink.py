"""The same jobs on a real, embedded Flink: Beam's Flink job server from Maven Central.

``make test`` fetches the job server first (``make flink``); without it the run
would fetch it itself through Maven. The batch job's output must be exactly the
DirectRunner's: the reviewed golden file that ``test_cli_run`` checks the
DirectRunner against.
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import (
    WIRENEWS,
    article_json,
    read_avro,
    run_wirenews,
    story_body,
    summary_counts,
)
from tests.integration.chaos import committed, stop_as_a_terminal_would
from tests.integration.test_cli_run import check_seeds_output

pytestmark = pytest.mark.slow

FLINK = ("--runner=FlinkRunner", "--flink_master=[local]")


@pytest.fixture(scope="module")
def flink_seeds_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("flink-out")
    done = run_wirenews("run", "--source", "seeds/", "--output", str(out), *FLINK, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, out


def test_seeds_on_flink_give_the_direct_runners_records(flink_seeds_run) -> None:
    """Every field of every article (dedup, entities, quotes included), but run-time ones."""
    stdout, out = flink_seeds_run
    check_seeds_output(stdout, out)
    assert read_avro(out, "dead_letters") == []


@pytest.mark.kafka
def test_a_stream_on_flink_dedups_writes_and_commits_what_it_is_fed(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    create_topic(topic, 2)
    fed = produce_stories_and_a_copy(produce, topic, "f", 6)
    out, log = tmp_path / "out", tmp_path / "stream.log"
    with log.open("wb") as sink:
        stream = subprocess.Popen(
            [
                str(WIRENEWS),
                "--verbose",  # Flink's own log, for when it fails
                "run",
                "--source",
                f"kafka://{kafka_bootstrap}/{topic}",
                "--group",
                "g",
                "--output",
                str(out),
                "--window",
                "2",
                "--checkpointing_interval=2000",
                *FLINK,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            written = {a["id"] for a in read_avro(out, "articles")} if out.exists() else set()
            duplicates = _duplicates(out)
            offsets = committed(kafka_bootstrap, "g", topic, 2)
            if written >= fed and duplicates and offsets == {0: 3, 1: 4}:
                break
            assert stream.poll() is None, _trouble(log)
            time.sleep(1)
        else:
            pytest.fail(
                f"the stream wrote {sorted(written)}, duplicates {duplicates} and committed "
                f"{offsets} in 150 s:\n" + _trouble(log)
            )
        assert sorted(a["id"] for a in read_avro(out, "articles")) == sorted(fed)
        assert _duplicates(out) == {"f-1-copy": "f-1"}
        # Stopped as in a terminal: Ctrl-C reaches the whole group, the job server too.
        text = stop_as_a_terminal_would(stream, log)
        # Flink reports a stream's counters only when it ends by itself, never when cancelled.
        assert "CANCELLED: the runner reported no counters" in text, _trouble(log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stream.pid, signal.SIGKILL)
        stream.wait(timeout=60)


@pytest.mark.kafka
def test_a_bounded_kafka_run_on_flink_reads_to_the_end_and_commits(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    create_topic(topic, 2)
    check_a_bounded_run(kafka_bootstrap, topic, produce, tmp_path / "out", *FLINK)


def produce_stories_and_a_copy(produce: Callable, topic: str, prefix: str, count: int) -> set[str]:
    """``count`` stories on two partitions, then ``<prefix>-1-copy``; the stories' ids.

    The copy follows its original in the same partition: seen second, it is the duplicate.
    """
    fed = {f"{prefix}-{n}" for n in range(count)}
    for n, article_id in enumerate(sorted(fed)):
        produce(topic, article_json(id=article_id), partition=n % 2)
    copy = article_json(id=f"{prefix}-1-copy", body=story_body(f"{prefix}-1"))
    produce(topic, copy, partition=1)
    return fed


def check_a_bounded_run(
    bootstrap: str, topic: str, produce: Callable, out: Path, *flags: str
) -> None:
    """Four articles and a poison message on two partitions, read to the end and committed."""
    for n in range(4):
        produce(topic, article_json(id=f"b-{n}"), partition=n % 2)
    produce(topic, b"{not json", partition=1)
    source = f"kafka://{bootstrap}/{topic}"
    done = run_wirenews(
        "run", "--source", source, "--group", "b", "--until-end", "--output", str(out), *flags,
        timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary_counts(done.stdout) == {
        "read": 5,
        "articles": 4,
        "duplicates": 0,
        "dead_letters": 1,
    }
    assert sorted(a["id"] for a in read_avro(out, "articles")) == [f"b-{n}" for n in range(4)]
    [letter] = read_avro(out, "dead_letters")
    assert (letter["error_type"], letter["origin"]["partition"]) == ("MalformedJson", 1)
    assert committed(bootstrap, "b", topic, 2) == {0: 2, 1: 3}


def _duplicates(out: Path) -> dict[str, str]:
    """Each duplicate written: its id → the id of its original."""
    if not out.exists():
        return {}
    return {d["id"]: d["duplicate_of"] for d in read_avro(out, "duplicates")}


def _trouble(log: Path) -> str:
    """Warnings and errors from the job's log (Flink's included), then its last lines."""
    lines = log.read_text(errors="replace").splitlines()
    warnings = [line for line in lines if any(w in line for w in ("WARN", "ERROR", "Exception"))]
    return "\n".join(warnings[-40:]) + "\n...\n" + "\n".join(lines[-15:])
