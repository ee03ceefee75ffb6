"""Garbage and giants through the Kafka source and the file reader, on a real broker.

Every message lands in exactly one output; each refused one carries a readable reason;
a 50 MB message or file is refused as too large, keeping only a bounded prefix.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from tests.conftest import article_json, read_avro, run_wirenews, summary_counts
from tests.integration.chaos import compare, file_outputs, input_coordinates
from transforms import errors

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

HUGE = 50 * 1024 * 1024
KEPT_PREFIX = 64 * 1024
ERROR_TYPES = set(errors.__all__)


def garbage(seed: int) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) pairs: hostile payloads, a few real articles, a copy, a tombstone."""
    rnd = random.Random(seed)
    odd = "\u200b\u202e\ufeff“«‹„Кремльالقاهرةירושלים北京🙂e\u0301"

    def odd_text(n: int) -> str:
        return "".join(rnd.choice(odd + "abc def.\n") for _ in range(n))

    depth = 50_000
    pairs: list[tuple[bytes | None, bytes | None]] = [
        (None, bytes(rnd.getrandbits(8) for _ in range(500))),
        (None, json.dumps([1, {"a": None}, "x"]).encode()),
        (None, b"[" * depth + b"]" * depth),
        (None, b'{"body": ' * depth + b'"x"' + b"}" * depth),
        (None, json.dumps({"body": "\ud800 lone surrogate"}).encode()),
        (None, json.dumps({"body": 42}).encode()),
        (b"odd-1", json.dumps({"body": odd_text(300), "headline": odd_text(20)}).encode()),
        (b"odd-2", odd_text(400).encode()),
        (b"quotes", "He said “we will not ‘yield and « left.\n\nThen “nothing.".encode()),
        (b"tiny", b'{"body": "Yes."}'),
        (b"\xff\xfe", article_json(id="bad-key-good-body")),
        (b"tombstone", None),
        (b"empty", b""),
    ]
    pairs += [(f"real-{n}".encode(), article_json(id=f"real-{n}")) for n in range(4)]
    copy = json.loads(article_json(id="real-0"))
    pairs.append((b"copy-of-0", json.dumps({**copy, "id": "copy-of-0"}).encode()))
    rnd.shuffle(pairs)
    return pairs


def test_every_message_lands_in_one_output_and_a_giant_is_refused(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topic, 2, 1, topic_configs={"max.message.bytes": str(HUGE + 2**20)})]
        )
    finally:
        admin.close()
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        acks="all",
        max_request_size=HUGE + 2**20,
    )
    try:
        for key, value in garbage(seed=10):
            producer.send(topic, key=key, value=value).get(timeout=60)
        giant = b'{"id": "giant", "body": "' + b"words " * (HUGE // 6) + b'"}'
        producer.send(topic, key=b"giant", value=giant).get(timeout=120)
    finally:
        producer.close()

    out = tmp_path / "out"
    done = run_wirenews(
        "run", "--source", f"kafka://{kafka_bootstrap}/{topic}", "--until-end", "--output", str(out)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = summary_counts(done.stdout)

    inputs = input_coordinates(kafka_bootstrap, topic)
    outputs = file_outputs(out)
    result = compare(inputs, outputs)
    assert (result.lost, result.in_two_outputs, result.made_up) == ([], [], [])
    assert result.written_twice == 0, "a bounded run writes each record once"
    assert (
        counts["read"]
        == len(inputs)
        == counts["articles"] + counts["duplicates"] + counts["dead_letters"]
    )
    # Same time, same story: the smaller id is the original (README, Deduplication).
    assert {d["id"] for d in outputs["duplicates"]} == {"real-0"}
    letters = outputs["dead_letters"]
    for letter in letters:
        assert letter["error_type"] in ERROR_TYPES
        assert letter["error_message"].strip()
        assert letter["error_message"].isprintable()
    [refused] = [d for d in letters if d["error_type"] == "RecordTooLarge"]
    assert refused["payload_size"] == len(giant)
    assert len(refused["payload"]) <= KEPT_PREFIX
    assert "over the limit" in refused["error_message"]
    assert {"copy-of-0", "real-1", "real-2", "real-3", "tiny", "bad-key-good-body"} <= {
        a["id"] for a in outputs["articles"]
    }


def test_a_50_mb_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "fine.json").write_bytes(article_json(id="fine"))
    with (folder / "giant.json").open("wb") as file:
        file.write(b'{"id": "giant", "body": "')
        chunk = b"words " * (1024 * 1024 // 6)
        for _ in range(HUGE // len(chunk) + 1):
            file.write(chunk)
        file.write(b'"}')
    size = (folder / "giant.json").stat().st_size
    out = tmp_path / "out"
    done = run_wirenews("run", "--source", str(folder), "--output", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert [a["id"] for a in read_avro(out, "articles")] == ["fine"]
    [letter] = read_avro(out, "dead_letters")
    assert (letter["error_type"], letter["stage"], letter["payload_size"]) == (
        "RecordTooLarge",
        "read",
        size,
    )
    assert len(letter["payload"]) <= KEPT_PREFIX
