"""Feeding a real Kafka broker and reading topics in bounded mode."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from tests.conftest import (
    SEED_PAGE,
    WIRENEWS,
    article_json,
    large_french_article,
    read_avro,
    run_wirenews,
    summary_counts,
)
from tests.integration.chaos import start_as_a_terminal_would

pytestmark = pytest.mark.kafka

SEED_COUNT = 15


def consume_all(bootstrap: str, topic: str) -> list:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        enable_auto_commit=False,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def summary(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def feed(
    bootstrap: str, topic: str, partitions: int, *paths: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """``wirenews feed`` onto ``topic``, created with ``partitions`` partitions."""
    return run_wirenews(
        "feed",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--partitions",
        str(partitions),
        *paths,
        stdin=stdin,
    )


def bounded_run(bootstrap: str, topic: str, out: Path, *flags: str) -> str:
    return summary(
        run_wirenews(
            "run",
            "--source",
            f"kafka://{bootstrap}/{topic}",
            "--until-end",
            "--output",
            str(out),
            *flags,
        )
    )


def test_feed_publishes_one_message_per_article(
    kafka_bootstrap: str, topic: str, seeds_dir: Path
) -> None:
    line = summary(feed(kafka_bootstrap, topic, 3, str(seeds_dir)))
    assert line.startswith(f"sent {SEED_COUNT} articles to {topic}")
    assert "skipped 0 unparseable; failed 0" in line
    messages = consume_all(kafka_bootstrap, topic)
    assert len(messages) == SEED_COUNT
    assert {m.partition for m in messages} == {0, 1, 2}
    for message in messages:
        value = json.loads(message.value)
        assert message.key.decode() == value["id"]
        headers = dict(message.headers)
        assert headers["content-type"] == b"application/json"
        assert headers["wirenews-origin"].decode().startswith(str(seeds_dir))
        assert value["body"]
    # JSON articles go as they are; pages are parsed into the same JSON input format.
    [page] = [
        m
        for m in messages
        if "000_109866a445957986.txt" in dict(m.headers)["wirenews-origin"].decode()
    ]
    assert json.loads(page.value)["dateline"] == "BRUSSELS"
    [given] = [m for m in messages if m.key == b"nw-2024-1125-001"]
    assert json.loads(given.value) in [
        json.loads(line)
        for line in (seeds_dir / "002_northwire-feed.jsonl").read_text().splitlines()
    ]
    # `read` is for the pipeline's output: it says so of an input topic, and prints no count.
    shown = run_wirenews("read", f"kafka://{kafka_bootstrap}/{topic}", "--count")
    assert (shown.returncode, shown.stdout) == (1, "")
    assert "not the pipeline's output" in shown.stderr
    missing = run_wirenews("read", f"kafka://{kafka_bootstrap}/{topic}-none", "--count")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert f"topic '{topic}-none' does not exist" in missing.stderr


def test_feed_skips_and_counts_what_it_cannot_parse(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    (tmp_path / "good.json").write_bytes(article_json(id="good"))
    (tmp_path / "broken.json").write_bytes(b"{broken")
    (tmp_path / "lines.jsonl").write_bytes(
        article_json(id="line") + b"\n" + b'{"headline": "no body"}\n'
    )
    done = feed(kafka_bootstrap, topic, 1, str(tmp_path))
    assert done.returncode == 1, "not everything given reached the topic"
    line = done.stdout.strip()
    assert line.startswith(f"sent 2 articles to {topic}")
    assert "skipped 2 unparseable" in line
    assert sorted(m.key for m in consume_all(kafka_bootstrap, topic)) == [b"good", b"line"]


def test_feed_reads_json_lines_from_stdin(kafka_bootstrap: str, topic: str) -> None:
    lines = article_json(id="s1") + b"\n" + article_json(id="s2") + b"\n"
    done = feed(kafka_bootstrap, topic, 1, "-", stdin=lines)
    assert summary(done).startswith(f"sent 2 articles to {topic}")
    messages = consume_all(kafka_bootstrap, topic)
    assert [m.key for m in messages] == [b"s1", b"s2"]
    assert dict(messages[0].headers)["wirenews-origin"] == b"<stdin>:1"


def test_feed_without_a_broker_says_so_in_one_line(tmp_path: Path, seeds_dir: Path) -> None:
    done = run_wirenews("feed", "--bootstrap", "127.0.0.1:1", "--topic", "t", str(seeds_dir))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "wirenews feed: cannot reach Kafka at 127.0.0.1:1: no broker answered within 10 s "
        "(KafkaTimeoutError)"
    ]


def test_an_article_too_large_for_the_topic_fails_alone(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    """Over Kafka's 1 MiB, the producer refuses it; the broker's refusal would fail every send."""
    (tmp_path / "a-large.json").write_bytes(large_french_article("large", 1_100_000))
    (tmp_path / "b.jsonl").write_bytes(article_json(id="b1") + b"\n" + article_json(id="b2"))
    done = run_wirenews(
        "feed", "--bootstrap", kafka_bootstrap, "--topic", topic, "--kafka-config", "linger_ms=5",
        str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.strip().endswith("skipped 0 unparseable; failed 1")
    [error] = [line for line in done.stderr.splitlines() if "a-large.json" in line]
    assert "--kafka-config max_request_size=" in error
    assert sorted(m.key for m in consume_all(kafka_bootstrap, topic)) == [b"b1", b"b2"]

    # A topic that takes larger messages takes it, once the producer is told so.
    large_topic = f"{topic}-large"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics({large_topic: {"configs": {"max.message.bytes": str(3 * 2**20)}}})
    finally:
        admin.close()
    done = run_wirenews(
        "feed", "--bootstrap", kafka_bootstrap, "--topic", large_topic,
        "--kafka-config", f"max_request_size={3 * 2**20}", str(tmp_path / "a-large.json"),
    )  # fmt: skip
    assert summary(done).startswith(f"sent 1 article to {large_topic}")
    [message] = consume_all(kafka_bootstrap, large_topic)
    assert message.value == (tmp_path / "a-large.json").read_bytes()


def test_a_producer_setting_does_not_stop_the_other_clients(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    """Consumers and admin clients refuse settings they do not know: each gets its own."""
    (tmp_path / "a.jsonl").write_bytes(article_json(id="a1") + b"\n" + article_json(id="a2"))
    setting = ("--kafka-config", "max_request_size=2000000")
    fed = summary(feed(kafka_bootstrap, topic, 1, *setting, str(tmp_path / "a.jsonl")))
    assert fed.startswith(f"sent 2 articles to {topic}")
    done = run_wirenews(
        "run", "--source", f"kafka://{kafka_bootstrap}/{topic}", "--until-end",
        "--output", f"kafka://{kafka_bootstrap}/{topic}-out", *setting,
    )  # fmt: skip
    assert summary_counts(summary(done))["articles"] == 2
    assert sorted(m.key for m in consume_all(kafka_bootstrap, f"{topic}-out")) == [b"a1", b"a2"]


def test_seeds_and_poison_messages_through_a_bounded_run(
    kafka_bootstrap: str, topic: str, seeds_dir: Path, tmp_path: Path, produce: Callable
) -> None:
    summary(feed(kafka_bootstrap, topic, 3, str(seeds_dir)))
    poison = [b"{not json", bytes(range(256)), b"", None, b'{"headline": "no body"}']
    for value in poison:
        produce(topic, value, key=b"tombstone" if value is None else None, partition=1)
    out = tmp_path / "out"
    line = bounded_run(kafka_bootstrap, topic, out, "--group", "g1")
    total = SEED_COUNT + len(poison)
    assert summary_counts(line) == {
        "read": total,
        "articles": SEED_COUNT - 2,
        "duplicates": 2,
        "dead_letters": 5,
    }
    outputs = read_avro(out, "articles") + read_avro(out, "duplicates")
    letters = read_avro(out, "dead_letters")
    coordinates = [(r["origin"]["partition"], r["origin"]["offset"]) for r in outputs + letters]
    assert len(set(coordinates)) == total
    assert all(
        r["origin"]["kind"] == "kafka" and r["origin"]["topic"] == topic for r in outputs + letters
    )
    fed = sorted(m.key.decode() for m in consume_all(kafka_bootstrap, topic) if m.key and m.value)
    assert sorted(r["id"] for r in outputs) == fed
    assert sorted(letter["error_type"] for letter in letters) == [
        "EmptyArticle",
        "EmptyArticle",
        "InvalidEncoding",
        "MalformedJson",
        "MissingField",
    ]
    assert {letter["origin"]["partition"] for letter in letters} == {1}
    assert {letter["payload"] for letter in letters} == {v or b"" for v in poison}

    # The group's offsets now stand at the end of every partition, so a rerun reads nothing.
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id="g1", enable_auto_commit=False
    )
    partitions = [TopicPartition(topic, p) for p in range(3)]
    ends = consumer.end_offsets(partitions)
    assert {tp: consumer.committed(tp) for tp in partitions} == ends
    consumer.close()
    again = bounded_run(kafka_bootstrap, topic, out, "--group", "g1")
    assert summary_counts(again)["read"] == 0
    # A run for the group after more arrived adds its files beside the earlier runs'.
    produce(topic, article_json(id="later"), key=b"later", partition=0)
    later = bounded_run(kafka_bootstrap, topic, out, "--group", "g1")
    assert summary_counts(later)["read"] == 1
    kept = read_avro(out, "articles") + read_avro(out, "duplicates")
    assert sorted(r["id"] for r in kept) == sorted([*fed, "later"])
    assert len(read_avro(out, "dead_letters")) == len(letters)


def test_a_kcat_message_is_read_like_any_other(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed: `make test` installs it (Debian package kcat)"
    subprocess.run(
        [
            kcat,
            "-P",
            "-b",
            kafka_bootstrap,
            "-t",
            topic,
            "-k",
            "page-1",
            "-H",
            "content-type=text/plain",
            str(SEED_PAGE),
        ],
        check=True,
        timeout=60,
    )
    out = tmp_path / "out"
    assert summary_counts(bounded_run(kafka_bootstrap, topic, out))["articles"] == 1
    [article] = read_avro(out, "articles")
    assert article["id"] == "page-1"
    assert article["dateline"] == "BRUSSELS"
    assert article["headline"].startswith("NATO leader sidesteps")


def test_three_partitions_are_read_completely(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    create_topic(topic, 3)
    ids = [f"a-{n}" for n in range(60)]
    for n, article_id in enumerate(ids):
        produce(topic, article_json(id=article_id), partition=n % 3)
    out = tmp_path / "out"
    line = bounded_run(
        kafka_bootstrap,
        topic,
        out,
        "--direct_num_workers=2",
        "--direct_running_mode=multi_threading",
    )
    assert summary_counts(line) == {
        "read": 60,
        "articles": 60,
        "duplicates": 0,
        "dead_letters": 0,
    }
    articles = read_avro(out, "articles")
    assert sorted(a["id"] for a in articles) == sorted(ids)
    assert {a["origin"]["partition"] for a in articles} == {0, 1, 2}


def test_start_at_a_time_skips_older_messages(
    kafka_bootstrap: str, topic: str, tmp_path: Path, produce: Callable, create_topic: Callable
) -> None:
    create_topic(topic, 2)
    old = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    new = int(datetime(2024, 6, 1, tzinfo=timezone.utc).timestamp() * 1000)
    for n in range(6):
        produce(topic, article_json(id=f"old-{n}"), partition=n % 2, timestamp_ms=old + n)
    for n in range(4):
        produce(topic, article_json(id=f"new-{n}"), partition=n % 2, timestamp_ms=new + n)
    out = tmp_path / "out"
    bounded_run(kafka_bootstrap, topic, out, "--start", "2024-03-01T00:00:00Z")
    assert sorted(a["id"] for a in read_avro(out, "articles")) == [f"new-{n}" for n in range(4)]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_feed_stops_when_asked_and_sends_what_it_took_first(
    kafka_bootstrap: str, topic: str, stop: signal.Signals
) -> None:
    """`tail -f wire.jsonl | wirenews feed -` ends with Ctrl-C: a summary, not a traceback."""
    feeding = start_as_a_terminal_would(
        [str(WIRENEWS), "feed", "--bootstrap", kafka_bootstrap, "--topic", topic,
         "--partitions", "1", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert feeding.stdin is not None
    try:
        feeding.stdin.write(article_json(id="first") + b"\n")
        feeding.stdin.flush()
        deadline = time.monotonic() + 60
        while not consume_all(kafka_bootstrap, topic) and time.monotonic() < deadline:
            assert feeding.poll() is None
        for n in range(20):  # then a burst, and the stop while it is being sent
            feeding.stdin.write(article_json(id=f"burst-{n}") + b"\n")
        feeding.stdin.flush()
        os.killpg(feeding.pid, stop)
        out, err = feeding.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(feeding.pid, signal.SIGKILL)
    assert feeding.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    sent = re.match(rf"stopped: sent (\d+) articles? to {topic} ", out.decode().splitlines()[-1])
    assert sent, out.decode()
    on_the_topic = [m.key for m in consume_all(kafka_bootstrap, topic)]
    assert len(on_the_topic) == int(sent[1]) >= 1  # every send it counted, and no other
    assert on_the_topic[0] == b"first"
