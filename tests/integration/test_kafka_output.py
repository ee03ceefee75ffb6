"""Avro on a Kafka topic, consumed by kcat and decoded with Apache's avro package."""

import io
import json
import shutil
import struct
import subprocess
import urllib.request
from pathlib import Path

import avro.io
import avro.schema
import pytest
from kafka import KafkaAdminClient

from tests.conftest import (
    WIRENEWS,
    large_french_article,
    printed_is,
    run_wirenews,
    summary_counts,
)

pytestmark = pytest.mark.kafka

SEED_COUNT = 15
ARTICLE_COUNT = SEED_COUNT - 2  # the seeds hold one exact and one republished copy


def kcat_values(bootstrap: str, topic: str) -> list[tuple[bytes, bytes, dict[str, str]]]:
    """(key, value, headers) of every message, as kcat consumes them."""
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed: `make test` installs it"
    # %K: the key length in digits; %R: the value length as 4 big-endian bytes, so
    # binary values come through intact.
    framed = subprocess.run(
        [kcat, "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", "%K:%k%R%s"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    # JSON per message, for the headers. Payloads are binary: split on newlines alone, as
    # bytes (str.splitlines also splits at U+0085 and U+2028, which a payload can hold).
    described = [
        line.decode("utf-8", "replace")
        for line in subprocess.run(
            [kcat, "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-J"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.split(b"\n")
        if line
    ]
    messages, position = [], 0
    for line in described:
        colon = framed.index(b":", position)
        key_size = int(framed[position:colon])
        key = framed[colon + 1 : colon + 1 + max(key_size, 0)]
        position = colon + 1 + max(key_size, 0)
        (size,) = struct.unpack_from(">I", framed, position)
        value = framed[position + 4 : position + 4 + size]
        position += 4 + size
        headers = json.loads(line).get("headers") or []
        messages.append((key, value, dict(zip(headers[::2], headers[1::2], strict=True))))
    assert position == len(framed)
    return messages


def decode(schema_json: str, body: bytes) -> dict:
    reader = avro.io.DatumReader(avro.schema.parse(schema_json))
    return reader.read(avro.io.BinaryDecoder(io.BytesIO(body)))


def test_articles_on_a_topic_decode_without_our_code(
    kafka_bootstrap: str, topic: str, seeds_dir: Path
) -> None:
    done = run_wirenews(
        "run", "--source", str(seeds_dir), "--output", f"kafka://{kafka_bootstrap}/{topic}"
    )
    assert done.returncode == 0, done.stderr
    assert summary_counts(done.stdout) == {
        "read": SEED_COUNT,
        "articles": ARTICLE_COUNT,
        "duplicates": 2,
        "dead_letters": 0,
    }
    [(fingerprint, schema_json, _)] = kcat_values(kafka_bootstrap, f"{topic}-schemas")
    messages = kcat_values(kafka_bootstrap, topic)
    assert len(messages) == ARTICLE_COUNT
    decoded = []
    for key, value, headers in messages:
        assert headers["wirenews-schema"] == "io.wirenews.Article"
        assert headers["wirenews-schema-fingerprint"].encode() == fingerprint
        article = decode(schema_json.decode(), value)
        assert article["id"].encode() == key
        decoded.append(article)
    assert {a["dateline"] for a in decoded} >= {"BRUSSELS", "HELSINKI", "DUBLIN"}

    shown = run_wirenews("read", f"kafka://{kafka_bootstrap}/{topic}")
    assert shown.returncode == 0, shown.stderr
    printed = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(printed) == len(decoded)
    assert all(map(printed_is, printed, decoded))
    table = run_wirenews("read", f"kafka://{kafka_bootstrap}/{topic}", "--format", "table")
    assert [row.split()[0] for row in table.stdout.splitlines()[1:]] == [a["id"] for a in decoded]


def test_an_article_too_large_for_its_topic_becomes_a_dead_letter(
    kafka_bootstrap: str, topic: str, seeds_dir: Path, tmp_path: Path
) -> None:
    """The producer takes the topic's limit: the broker's refusal would fail it for good."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:  # under Kafka's 1 MiB, the producer's own default
        admin.create_topics({topic: {"configs": {"max.message.bytes": "200000"}}})
    finally:
        admin.close()
    source = tmp_path / "source"
    shutil.copytree(seeds_dir, source)
    (source / "large.json").write_bytes(large_french_article("large", 300_000))
    done = run_wirenews(
        "run", "--source", str(source), "--output", f"kafka://{kafka_bootstrap}/{topic}"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary_counts(done.stdout) == {
        "read": SEED_COUNT + 1,
        "articles": ARTICLE_COUNT,
        "duplicates": 2,
        "dead_letters": 1,
    }
    # The output topics were made at launch, not left to the broker's auto-creation.
    assert "not found in cluster metadata" not in done.stderr
    assert len(kcat_values(kafka_bootstrap, topic)) == ARTICLE_COUNT
    # Each writer publishes the schema at its start: as many copies as workers.
    schemas = kcat_values(kafka_bootstrap, f"{topic}-dead-letters-schemas")
    [schema_json] = {value for _, value, _ in schemas}
    [(key, value, _)] = kcat_values(kafka_bootstrap, f"{topic}-dead-letters")
    letter = decode(schema_json.decode(), value)
    assert (letter["stage"], letter["error_type"]) == ("write", "MessageTooLarge")
    assert "over 200,000 bytes, the largest message the topic takes" in letter["error_message"]
    assert letter["origin"]["path"] == str(source / "large.json") == key.decode()
    assert len(letter["payload"]) == 64 * 1024 < letter["payload_size"]
    assert letter["payload"].startswith(b'{"id": "large"')


def test_an_output_broker_that_does_not_answer_fails_the_launch(seeds_dir: Path) -> None:
    done = run_wirenews("run", "--source", str(seeds_dir), "--output", "kafka://127.0.0.1:1/t")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "wirenews run: cannot reach Kafka at 127.0.0.1:1: no broker answered within 10 s "
        "(KafkaTimeoutError)"
    )


def test_with_a_schema_registry_values_are_confluent_framed(
    kafka_bootstrap: str, topic: str, seeds_dir: Path, schema_registry: str
) -> None:
    done = run_wirenews(
        "run",
        "--source",
        str(seeds_dir),
        "--output",
        f"kafka://{kafka_bootstrap}/{topic}",
        "--schema-registry",
        schema_registry,
    )
    assert done.returncode == 0, done.stderr
    subjects = registry_get(f"{schema_registry}/subjects")
    assert f"{topic}-value" in subjects
    schemas: dict[int, str] = {}
    decoded = []
    for key, value, headers in kcat_values(kafka_bootstrap, topic):
        assert value[0] == 0, "the Confluent magic byte"
        (schema_id,) = struct.unpack(">I", value[1:5])
        if schema_id not in schemas:
            schemas[schema_id] = registry_get(f"{schema_registry}/schemas/ids/{schema_id}")[
                "schema"
            ]
        article = decode(schemas[schema_id], value[5:])
        assert article["id"].encode() == key
        assert "wirenews-schema-fingerprint" not in headers
        decoded.append(article)
    assert len(decoded) == ARTICLE_COUNT
    assert len(schemas) == 1

    shown = run_wirenews(
        "read", f"kafka://{kafka_bootstrap}/{topic}", "--schema-registry", schema_registry
    )
    assert shown.returncode == 0, shown.stderr
    printed = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(printed) == len(decoded)
    assert all(map(printed_is, printed, decoded))
    without = run_wirenews("read", f"kafka://{kafka_bootstrap}/{topic}")
    assert without.returncode == 1
    assert "pass --schema-registry URL" in without.stderr


def registry_get(url: str) -> object:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with opener.open(url, timeout=30) as response:
        return json.loads(response.read())


def test_read_follow_tails_a_topic_as_it_grows(
    kafka_bootstrap: str, topic: str, seeds_dir: Path
) -> None:
    target = f"kafka://{kafka_bootstrap}/{topic}"
    assert run_wirenews("run", "--source", str(seeds_dir), "--output", target).returncode == 0
    follower = subprocess.Popen(
        [str(WIRENEWS), "read", target, "--follow", "--format", "table"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = [follower.stdout.readline() for _ in range(1 + ARTICLE_COUNT)]
        assert run_wirenews("run", "--source", str(seeds_dir), "--output", target).returncode == 0
        lines += [follower.stdout.readline() for _ in range(ARTICLE_COUNT)]
        assert follower.poll() is None, "--follow keeps reading"
    finally:
        follower.terminate()
        follower.wait(timeout=30)
        follower.stdout.close()
    ids = [line.split()[0] for line in lines[1:]]
    assert ids[:ARTICLE_COUNT] == ids[ARTICLE_COUNT:]
    assert len(set(ids)) == ARTICLE_COUNT
