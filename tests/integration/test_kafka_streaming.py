"""A streaming run on Prism against the real broker: live input, stop, restart."""

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import fastavro
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewPartitions

from pipeline.runner import find_prism
from tests.conftest import (
    WIRENEWS,
    article_json,
    read_avro,
    read_with_apache_avro,
    read_with_avrocat,
    run_wirenews,
    story_body,
)
from tests.integration.chaos import stop_as_a_terminal_would

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WINDOW_SECONDS = "2"
PATIENCE_SECONDS = 150.0


def start_stream(
    bootstrap: str, topic: str, out: Path | str, log: Path, *flags: str
) -> subprocess.Popen[bytes]:
    assert find_prism(), "Prism is not built: `make test` builds it (make prism)"
    with log.open("ab") as sink:
        return subprocess.Popen(
            [
                str(WIRENEWS),
                "run",
                "--source",
                f"kafka://{bootstrap}/{topic}",
                "--group",
                "g",
                "--output",
                str(out),
                "--window",
                WINDOW_SECONDS,
                *flags,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a test can kill it with Prism and its workers
        )


def stop_stream(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def wait_for(
    condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, f"the stream stopped early:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def ids_written(out: Path) -> list[str]:
    return [a["id"] for a in read_avro(out, "articles")] if out.exists() else []


def committed(bootstrap: str, topic: str, partitions: int) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id="g", enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close()


def test_stream_picks_up_live_input_and_resumes_where_it_committed(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    create_topic(topic, 2)
    out, log = tmp_path / "out", tmp_path / "stream.log"

    def feed(batch: str, count: int) -> set[str]:
        ids = {f"{batch}-{n}" for n in range(count)}
        for n, article_id in enumerate(sorted(ids)):
            produce(topic, article_json(id=article_id), partition=n % 2)
        return ids

    before = feed("before", 6)
    stream = start_stream(kafka_bootstrap, topic, out, log)
    try:
        wait_for(lambda: before <= set(ids_written(out)), "the first batch", stream, log)
        live = feed("live", 6)
        wait_for(lambda: live <= set(ids_written(out)), "the batch fed while running", stream, log)
        assert stream.poll() is None, "the stream keeps running"
        wait_for(
            lambda: committed(kafka_bootstrap, topic, 2) == {0: 6, 1: 6}, "the commits", stream, log
        )
    finally:
        stop_stream(stream)

    while_down = feed("down", 4)
    stream = start_stream(kafka_bootstrap, topic, out, log)
    try:
        wait_for(
            lambda: while_down <= set(ids_written(out)), "the batch fed while down", stream, log
        )
        wait_for(
            lambda: committed(kafka_bootstrap, topic, 2) == {0: 8, 1: 8}, "the commits", stream, log
        )
    finally:
        stop_stream(stream)

    articles = read_avro(out, "articles")
    coordinates = [(a["origin"]["partition"], a["origin"]["offset"]) for a in articles]
    assert len(coordinates) == len(set(coordinates)), "a committed record was read twice"
    assert sorted(a["id"] for a in articles) == sorted(before | live | while_down)
    assert read_avro(out, "dead_letters") == []
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "a temporary file was left"
    # Streaming files are read like batch files, by every implementation and by `wirenews read`.
    assert read_with_apache_avro(out, "articles") == articles
    assert [a["id"] for a in read_with_avrocat(out, "articles")] == [a["id"] for a in articles]
    shown = run_wirenews("read", str(out))
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line)["id"] for line in shown.stdout.splitlines()] == [
        a["id"] for a in articles
    ]


def test_ctrl_c_in_a_terminal_stops_the_stream_with_its_summary(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    """A terminal sends SIGINT to its whole foreground group: the job's children get it too."""
    create_topic(topic, 1)
    out, log = tmp_path / "out", tmp_path / "stream.log"
    ids = {f"ctrl-c-{n}" for n in range(3)}
    for article_id in sorted(ids):
        produce(topic, article_json(id=article_id))
    stream = start_stream(kafka_bootstrap, topic, out, log)
    try:
        wait_for(lambda: ids <= set(ids_written(out)), "the articles", stream, log)
        text = stop_as_a_terminal_would(stream, log)
        assert "CANCELLED: read 3 records: 3 articles, 0 duplicates, 0 dead letters" in text, text
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stream.pid, signal.SIGKILL)
        stream.wait(timeout=60)


def test_stream_picks_up_partitions_added_while_it_runs(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    create_topic(topic, 1)
    out, log = tmp_path / "out", tmp_path / "stream.log"
    produce(topic, article_json(id="first"), partition=0)
    stream = start_stream(kafka_bootstrap, topic, out, log)
    try:
        wait_for(lambda: "first" in ids_written(out), "the first article", stream, log)
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            admin.create_partitions({topic: NewPartitions(total_count=2)})
        finally:
            admin.close()
        fresh = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")  # new metadata
        try:
            fresh.send(topic, article_json(id="in-new-partition"), partition=1).get(timeout=30)
        finally:
            fresh.close()
        wait_for(lambda: "in-new-partition" in ids_written(out), "the new partition", stream, log)
        wait_for(
            lambda: committed(kafka_bootstrap, topic, 2) == {0: 1, 1: 1}, "the commits", stream, log
        )
    finally:
        stop_stream(stream)
    [new] = [a for a in read_avro(out, "articles") if a["id"] == "in-new-partition"]
    assert (new["origin"]["partition"], new["origin"]["offset"]) == (1, 0)


def test_a_stream_killed_mid_window_leaves_no_partial_file_under_a_final_name(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    create_topic(topic, 2)
    out, log = tmp_path / "out", tmp_path / "stream.log"
    feeding = threading.Event()

    def feed_steadily() -> None:  # a rate the NLP keeps up with on one core
        for n in range(400):
            if not feeding.is_set():
                return
            produce(topic, article_json(id=f"steady-{n}"), partition=n % 2)
            time.sleep(0.25)

    stream = start_stream(kafka_bootstrap, topic, out, log)
    feeding.set()
    feeder = threading.Thread(target=feed_steadily)
    feeder.start()
    try:
        wait_for(lambda: len(list(out.glob("articles-*.avro"))) >= 3, "some files", stream, log)
    finally:
        os.killpg(stream.pid, signal.SIGKILL)
        stream.wait(timeout=30)
        feeding.clear()
        feeder.join()
    finals = sorted(out.glob("articles-*.avro"))
    assert finals
    for path in finals:
        with path.open("rb") as file:
            assert list(fastavro.reader(file)), f"{path.name} is empty"


def test_a_stream_into_a_topic_commits_what_the_broker_has(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    create_topic(topic, 2)
    log = tmp_path / "stream.log"
    for n in range(8):
        produce(topic, article_json(id=f"relay-{n}"), partition=n % 2)
    produce(topic, b"{not json", partition=0)
    stream = start_stream(kafka_bootstrap, topic, f"kafka://{kafka_bootstrap}/{topic}-out", log)
    try:
        wait_for(
            lambda: committed(kafka_bootstrap, topic, 2) == {0: 5, 1: 4}, "the commits", stream, log
        )
    finally:
        stop_stream(stream)
    shown = run_wirenews("read", f"kafka://{kafka_bootstrap}/{topic}-out")
    assert sorted(json.loads(line)["id"] for line in shown.stdout.splitlines()) == [
        f"relay-{n}" for n in range(8)
    ]
    letters = run_wirenews("read", f"kafka://{kafka_bootstrap}/{topic}-out-dead-letters")
    [letter] = [json.loads(line) for line in letters.stdout.splitlines()]
    assert (letter["error_type"], letter["origin"]["offset"]) == ("MalformedJson", 4)


def test_stream_dedup_first_seen_wins_and_forgets_after_the_horizon(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    create_topic(topic, 1)
    out, log = tmp_path / "out", tmp_path / "stream.log"
    body = story_body("one wire story")
    produce(topic, article_json(id="first-seen", body=body, published_at="2024-11-26T10:00:00Z"))
    # Published an hour earlier but arriving later: still a copy of what came first.
    produce(topic, article_json(id="late-earlier", body=body, published_at="2024-11-26T09:00:00Z"))
    produce(topic, article_json(id="other-story"))
    fed_at = time.monotonic()
    stream = start_stream(kafka_bootstrap, topic, out, log, "--dedup-horizon", "3s")

    def duplicates() -> dict[str, str]:
        return (
            {d["id"]: d["duplicate_of"] for d in read_avro(out, "duplicates")}
            if out.exists()
            else {}
        )

    try:
        wait_for(lambda: "late-earlier" in duplicates(), "the late copy", stream, log)
        # Past the horizon (and the watermark's skew), the first article is forgotten.
        time.sleep(max(0.0, 12 - (time.monotonic() - fed_at)))
        produce(topic, article_json(id="after-horizon", body=body))
        wait_for(
            lambda: "after-horizon" in ids_written(out), "the copy after the horizon", stream, log
        )
    finally:
        stop_stream(stream)
    assert duplicates() == {"late-earlier": "first-seen"}
    articles = {a["id"]: a for a in read_avro(out, "articles")}
    assert set(articles) == {"first-seen", "other-story", "after-horizon"}
    # Expired state is gone, not only ignored: what the stream holds when it stops is at most
    # the last article's fingerprint (it may not be counted yet), where four were kept.
    summary = log.read_text().strip().splitlines()[-1]
    # Counted at all (read 4), then what is held.
    held = re.search(r"read 4 records: .* held: (\d+) fingerprints", summary)
    assert held, f"no counters in the summary: {summary}"
    assert 0 <= int(held[1]) <= 1
    assert articles["after-horizon"]["dedup"] == {
        "cluster_id": "after-horizon",
        "duplicate_of": None,
        "similarity": None,
        "method": None,
    }
