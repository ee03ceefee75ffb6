"""Security basics (issue #10): SASL through to kafka-python, no secret anywhere, no header paths.

A broker of this module's own adds a SASL_PLAINTEXT listener (PLAIN) to the usual one.
``wirenews feed`` and a bounded ``wirenews run`` reach it with the Java client's setting
names and the password in an environment variable, as the README shows; a wrong password
fails at once with a clear line; the password never shows up in what the commands print
(logs included, in verbose mode) nor in what they write. Messages whose headers name
files (``/etc/passwd``, a file of known content) never get those files read.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from tests.conftest import REPO, SEEDS, WIRENEWS, article_json, read_avro, summary_counts
from tests.integration.chaos import OUTPUTS, committed
from tests.integration.conftest import load_local_broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

USER = "alice"
PASSWORD = f"s3cret-{uuid.uuid4().hex}"
WRONG_PASSWORD = f"wrong-{uuid.uuid4().hex}"
PASSWORD_ENV = "WIRENEWS_TEST_KAFKA_PASSWORD"
TOPIC = "wire"
GROUP = "sasl"
SEED_ARTICLES = 15
# A refusal must be quick: no waiting out a "broker outage" that is a wrong password.
REFUSAL_SECONDS = 60.0
# What a file a header names would leak if it were ever opened.
MARKER = f"contents-never-to-be-read-{uuid.uuid4().hex}"
PASSWD_LINE = "root:x:0:0:"


def sasl_flags() -> list[str]:
    """The client settings for the SASL listener, spelt as in the Java client's docs."""
    return [
        "--kafka-config",
        "security.protocol=SASL_PLAINTEXT",
        "--kafka-config",
        "sasl.mechanism=PLAIN",
        "--kafka-config",
        f"sasl.plain.username={USER}",
        "--kafka-password-env",
        PASSWORD_ENV,
    ]


def wirenews(*args: str, password: str | None, timeout: float = 300) -> Done:
    """Run ``wirenews`` with the password (if any) in its environment, timed."""
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
    if password is not None:
        env[PASSWORD_ENV] = password
    began = time.monotonic()
    done = subprocess.run(
        [str(WIRENEWS), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Done(done, time.monotonic() - began)


@dataclass
class Done:
    """A finished command and how long it took."""

    process: subprocess.CompletedProcess[str]
    seconds: float

    @property
    def printed(self) -> str:
        """Everything the command printed."""
        return self.process.stdout + self.process.stderr


@dataclass
class SaslRun:
    """What the module's feed and run did over SASL."""

    plain: str
    sasl: str
    out: Path
    fed: Done
    ran: Done
    hostile: int
    secret_file: Path


@pytest.fixture(scope="module")
def sasl_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslRun]:
    broker = load_local_broker()
    state = tmp_path_factory.mktemp("kafka-sasl")
    work = tmp_path_factory.mktemp("sasl-run")
    plain = broker.start(state_dir=state, timeout=180.0, sasl_users={USER: PASSWORD})
    try:
        sasl = broker.sasl_address(state)
        assert sasl
        assert sasl != plain
        admin = KafkaAdminClient(bootstrap_servers=plain)
        try:
            admin.create_topics([NewTopic(TOPIC, 2, 1)])
        finally:
            admin.close()
        fed = wirenews(
            "feed", "--bootstrap", sasl, "--topic", TOPIC, *sasl_flags(), str(SEEDS),
            password=PASSWORD,
        )  # fmt: skip
        secret_file = work / "secret.txt"
        secret_file.write_text(MARKER + "\n")
        hostile = send_messages_naming_files(plain, secret_file)
        out = work / "out"
        ran = wirenews(
            "-v", "run", "--source", f"kafka://{sasl}/{TOPIC}", "--group", GROUP,
            "--until-end", "--output", str(out), *sasl_flags(),
            password=PASSWORD,
        )  # fmt: skip
        yield SaslRun(plain, sasl, out, fed, ran, hostile, secret_file)
    finally:
        broker.stop(state)


def send_messages_naming_files(bootstrap: str, secret_file: Path) -> int:
    """Messages whose headers, key or body name files; how many were sent."""
    names = [b"/etc/passwd", str(secret_file).encode(), f"file://{secret_file}".encode()]
    headers = [
        ("wirenews-origin", names[0]),
        ("path", names[1]),
        ("file", names[2]),
        ("content-location", names[1]),
        ("x-include", names[1]),
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        sends = [
            producer.send(
                TOPIC,
                article_json(id="names-files", url=f"file://{secret_file}"),
                key=b"names-files",
                headers=[("content-type", b"application/json"), *headers],
            ),
            producer.send(
                TOPIC,
                b"A plain text story about a harbour and its ministers, told in a sentence.",
                key=names[1],
                headers=[("content-type", b"text/plain"), ("wirenews-origin", names[1])],
            ),
            producer.send(TOPIC, str(secret_file).encode(), headers=headers),
            producer.send(TOPIC, b"/etc/passwd", headers=[("content-type", b"text/plain")]),
        ]
        for sent in sends:
            sent.get(timeout=30)
    finally:
        producer.close()
    return len(sends)


def output_text(out: Path) -> str:
    """Everything written under ``out``: the records decoded, and the files' raw bytes."""
    records = [r for name in OUTPUTS for r in read_avro(out, name)]
    raw = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    return repr(records) + raw.decode("latin-1")


def test_feed_and_a_bounded_run_work_through_sasl(sasl_run: SaslRun) -> None:
    fed, ran = sasl_run.fed.process, sasl_run.ran.process
    assert fed.returncode == 0, fed.stderr
    assert fed.stdout.strip().splitlines()[-1].startswith(f"sent {SEED_ARTICLES} articles to wire")
    assert ran.returncode == 0, ran.stderr[-3000:]
    counts = summary_counts(ran.stdout)
    assert counts["read"] == SEED_ARTICLES + sasl_run.hostile
    assert counts["articles"] + counts["duplicates"] + counts["dead_letters"] == counts["read"]
    assert len(read_avro(sasl_run.out, "articles")) == counts["articles"]
    # The group's offsets were committed through the SASL listener too.
    ends = {0: None, 1: None}
    for record in (r for name in OUTPUTS for r in read_avro(sasl_run.out, name)):
        p, o = record["origin"]["partition"], record["origin"]["offset"]
        ends[p] = max(ends[p] or 0, o + 1)
    assert committed(sasl_run.plain, GROUP, TOPIC, 2) == ends


@contextlib.contextmanager
def busy_cores() -> Iterator[None]:
    """Every core kept busy, so clients read late: a refusal then comes with the hang-up."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_a_wrong_or_missing_password_fails_at_once_and_says_why(sasl_run: SaslRun) -> None:
    source = f"kafka://{sasl_run.sasl}/{TOPIC}"
    with busy_cores():
        feed = wirenews(
            "feed", "--bootstrap", sasl_run.sasl, "--topic", TOPIC, *sasl_flags(), str(SEEDS),
            password=WRONG_PASSWORD,
        )  # fmt: skip
        run = wirenews(
            "run", "--source", source, "--until-end", "--output", str(sasl_run.out.parent / "no"),
            *sasl_flags(),
            password=WRONG_PASSWORD,
        )  # fmt: skip
    for done in (feed, run):
        assert done.process.returncode != 0, done.printed[-2000:]
        assert done.seconds < REFUSAL_SECONDS, done.printed[-2000:]
        assert "refused" in done.process.stderr, done.printed[-2000:]
        assert "Authentication failed" in done.process.stderr, done.printed[-2000:]
        assert "Traceback" not in done.printed, done.printed[-3000:]
        assert WRONG_PASSWORD not in done.printed
    unset = wirenews(
        "feed", "--bootstrap", sasl_run.sasl, "--topic", TOPIC, *sasl_flags(), str(SEEDS),
        password=None,
    )  # fmt: skip
    assert unset.process.returncode != 0
    assert f"environment variable {PASSWORD_ENV}" in unset.process.stderr
    refused = wirenews(
        "feed", "--bootstrap", sasl_run.sasl, "--topic", TOPIC,
        "--kafka-config", f"sasl.plain.password={PASSWORD}", str(SEEDS),
        password=None,
    )  # fmt: skip
    assert refused.process.returncode != 0
    assert "--kafka-password-env" in refused.process.stderr
    assert PASSWORD not in refused.printed


def test_the_password_is_nowhere_in_logs_summary_or_output(sasl_run: SaslRun) -> None:
    for done in (sasl_run.fed, sasl_run.ran):
        assert PASSWORD not in done.printed
    assert "INFO" in sasl_run.ran.process.stderr, "the run was verbose: its logs are all here"
    assert PASSWORD not in output_text(sasl_run.out)


def test_file_paths_in_message_headers_are_never_opened(sasl_run: SaslRun) -> None:
    assert MARKER in sasl_run.secret_file.read_text()
    written = output_text(sasl_run.out)
    printed = sasl_run.ran.printed
    for leak in (MARKER, PASSWD_LINE):
        assert leak not in written
        assert leak not in printed
    # Every record names where it came from in Kafka, never a path from a header.
    for name in OUTPUTS:
        for record in read_avro(sasl_run.out, name):
            assert record["origin"]["kind"] == "kafka"
            assert record["origin"]["path"] is None
            assert record["origin"]["topic"] == TOPIC
    assert "names-files" in {a["id"] for a in read_avro(sasl_run.out, "articles")}
