"""The pure parts of the Kafka connector: addresses, settings, records, trackers, ledgers."""

import io
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import (
    InvalidReplicationFactorError,
    KafkaConnectionError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
)
from kafka.net.transport import KafkaSSLTransport, KafkaTCPTransport

from pipeline import feed as feed_module
from pipeline.feed import StopRequests, message_of, read_ahead
from pipeline.io import kafka_client
from pipeline.io.kafka_client import (
    KafkaSettings,
    KafkaTopic,
    parse_start,
    patiently,
    producer_config,
    retriable,
    unreachable,
)
from pipeline.io.kafka_commit import OffsetLedger
from pipeline.io.kafka_eof import deliver_replies_before_eof
from pipeline.io.kafka_read import TopicPositions, _TopicTracker, to_raw_record
from tests.conftest import article_json
from transforms.errors import InvalidEncoding, MalformedJson, MissingField, WirenewsError
from transforms.records import MediaType, Origin, RawRecord


def message(
    value: bytes | None, key: bytes | None = None, headers: list | None = None
) -> ConsumerRecord:
    return ConsumerRecord(
        topic="wire",
        partition=2,
        leader_epoch=0,
        offset=41,
        timestamp=1_700_000_000_000,
        timestamp_type=0,
        key=key,
        value=value,
        headers=headers or [],
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        serialized_header_size=0,
    )


def test_kafka_urls() -> None:
    assert KafkaTopic.parse("kafka://a:9092,b:9092/wire") == KafkaTopic("a:9092,b:9092", "wire")
    assert str(KafkaTopic.parse("kafka://a:1/t")) == "kafka://a:1/t"
    for bad in ("kafka://a:1", "kafka:///t", "kafka://a:1/t/x", "a:1/t"):
        with pytest.raises(WirenewsError):
            KafkaTopic.parse(bad)


def test_settings_pass_through_typed_and_keep_secrets_out(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = KafkaSettings.from_flags(
        "h:1",
        [
            "security_protocol=SASL_PLAINTEXT",
            "sasl_mechanism=PLAIN",
            "request_timeout_ms=5000",
            "ssl_check_hostname=false",
        ],
        password_env="WIRE_PASSWORD",
    )
    monkeypatch.setenv("WIRE_PASSWORD", "s3cret")
    config = settings.client_config(KafkaConsumer)
    assert config["bootstrap_servers"] == ["h:1"]
    assert config["request_timeout_ms"] == 5000
    assert config["ssl_check_hostname"] is False
    assert config["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(settings)
    with pytest.raises(WirenewsError, match="--kafka-password-env"):
        KafkaSettings.from_flags("h:1", ["sasl_plain_password=oops"])
    with pytest.raises(WirenewsError, match="KEY=VALUE"):
        KafkaSettings.from_flags("h:1", ["nonsense"])
    monkeypatch.delenv("WIRE_PASSWORD")
    with pytest.raises(WirenewsError, match="WIRE_PASSWORD"):
        settings.client_config(KafkaConsumer)


def test_settings_take_the_java_clients_names_and_refuse_unknown_ones() -> None:
    settings = KafkaSettings.from_flags(
        "h:1", ["security.protocol=SASL_SSL", "sasl.mechanism=PLAIN", "sasl.plain.username=u"]
    )
    assert dict(settings.extra) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "u",
    }
    with pytest.raises(WirenewsError, match="--kafka-password-env"):
        KafkaSettings.from_flags("h:1", ["sasl.plain.password=oops"])
    with pytest.raises(WirenewsError, match="security_protocl") as refused:
        KafkaSettings.from_flags("h:1", ["security.protocl=SASL_SSL"])
    assert "SASL_SSL" not in str(refused.value)
    with pytest.raises(WirenewsError, match="KEY=VALUE") as refused:
        KafkaSettings.from_flags("h:1", ["=s3cret"])
    assert "s3cret" not in str(refused.value)


def test_producer_settings_given_on_the_command_line_win_over_ours() -> None:
    settings = KafkaSettings.from_flags("h:1", ["linger.ms=5", "max_request_size=3000000"])
    config = producer_config(settings, linger_ms=50, delivery_timeout_ms=1000)
    assert (config["linger_ms"], config["max_request_size"]) == (5, 3_000_000)
    assert config["delivery_timeout_ms"] == 1000  # the caller's own over the defaults
    assert (config["acks"], config["enable_idempotence"]) == ("all", True)
    assert "max_request_size" not in producer_config(KafkaSettings("h:1"))  # Kafka's 1 MiB
    # Each client gets the settings it takes: the others refuse those they do not know.
    assert "max_request_size" not in settings.client_config(KafkaConsumer)
    assert "max_request_size" not in settings.client_config(KafkaAdminClient)


def test_a_refusal_is_never_waited_out_as_an_outage() -> None:
    settings = KafkaSettings("h:1")
    refusal = SaslAuthenticationFailedError("Authentication failed: Invalid username or password")
    assert not retriable(refusal)
    assert not retriable(_raised_from(unreachable(settings, refusal), refusal))
    assert retriable(KafkaConnectionError("gone"))
    assert retriable(InvalidReplicationFactorError("no broker alive while one restarts"))
    assert str(unreachable(settings, refusal)) == (  # kafka-python's class name said once
        "Kafka at h:1 refused the client: Authentication failed: Invalid username or password"
    )
    calls = []

    def refuse() -> None:
        calls.append(1)
        raise _raised_from(unreachable(settings, refusal), refusal)

    with pytest.raises(WirenewsError, match="refused"):
        patiently(settings, "a test", refuse, patience=60.0)
    assert calls == [1]


def test_a_refused_login_is_told_apart_from_a_bootstrap_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kafka-python logs the refusal while bootstrapping, then raises only a timeout."""
    settings = KafkaSettings("h:1")
    timeout = KafkaTimeoutError("Unable to bootstrap from ['h:1']")
    monkeypatch.setattr(kafka_client._RememberRefusals, "last", None)
    assert retriable(_raised_from(unreachable(settings, timeout), timeout))
    logging.getLogger("kafka.net.manager").warning(
        "Bootstrap connection to %s failed: %s (backoff %.2f secs)",
        "bootstrap-0",
        SaslAuthenticationFailedError("Authentication failed: Invalid username or password"),
        0.1,
    )
    error = _raised_from(unreachable(settings, timeout), timeout)
    assert "refused the client" in str(error)
    assert "Invalid username or password" in str(error)
    assert not retriable(error)


@pytest.fixture
def broker_side() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Our end of a connection (non-blocking, as kafka-python's) and the broker's."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.mark.parametrize("transport", [KafkaTCPTransport, KafkaSSLTransport])
def test_a_reply_that_came_with_the_hang_up_reaches_the_client_before_the_error(
    broker_side: tuple[socket.socket, socket.socket], transport: type[KafkaTCPTransport]
) -> None:
    """A broker refusing a login answers and hangs up; the answer must not be dropped."""
    ours, theirs = broker_side
    theirs.sendall(b"Authentication failed")
    theirs.close()
    reading = transport.__new__(transport)  # TLS's set-up would wrap the socket: only reads count
    KafkaTCPTransport.__init__(reading, net=None, sock=ours)
    assert reading._sock_recv() == (b"Authentication failed", None)
    data, error = reading._sock_recv()
    assert data == b""
    assert isinstance(error, KafkaConnectionError)


def test_reads_without_a_hang_up_or_without_a_reply_are_unchanged(
    broker_side: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = broker_side
    reading = KafkaTCPTransport(net=None, sock=ours)
    theirs.sendall(b"a reply")
    assert reading._sock_recv() == (b"a reply", None)
    assert reading._sock_recv() == (b"", None)  # nothing more yet: would block
    theirs.close()
    data, error = reading._sock_recv()
    assert data == b""
    assert isinstance(error, KafkaConnectionError)


def test_the_transport_fix_is_installed_once() -> None:
    installed = (KafkaTCPTransport._sock_recv, KafkaSSLTransport._sock_recv)
    deliver_replies_before_eof()
    assert (KafkaTCPTransport._sock_recv, KafkaSSLTransport._sock_recv) == installed
    assert all(read.keeps_replies for read in installed)


def _raised_from(error: Exception, cause: Exception) -> Exception:
    error.__cause__ = cause
    return error


def test_start_positions() -> None:
    assert parse_start("earliest") == "earliest"
    assert parse_start("2024-03-01T00:00:00Z") == datetime(2024, 3, 1, tzinfo=timezone.utc)
    with pytest.raises(WirenewsError, match="ISO 8601"):
        parse_start("yesterday")


def test_messages_become_raw_records() -> None:
    json_record = to_raw_record(message(b'{"body": "x"}', key=b"id-1"))
    assert json_record.media_type is MediaType.JSON
    assert json_record.key == "id-1"
    assert json_record.origin == Origin.kafka("wire", 2, 41)
    page = to_raw_record(message(b"Headline\n\nBody", headers=[("Content-Type", b"text/plain")]))
    assert page.media_type is MediaType.TEXT
    assert page.key is None
    assert to_raw_record(message(b"Headline\n\nBody")).media_type is MediaType.TEXT
    tombstone = to_raw_record(message(None, key=b"\xff\xfe"))
    assert (tombstone.payload, tombstone.key) == (b"", None)


def test_topic_tracker_checkpoints_at_the_positions_reached() -> None:
    tracker = _TopicTracker(TopicPositions(((0, 10), (1, 20))))
    assert tracker.try_claim((0, 11))
    assert tracker.try_claim((2, 0))  # a partition found while reading
    assert tracker.try_split(0.5) is None  # only checkpoints
    primary, residual = tracker.try_split(0)
    assert primary == TopicPositions(((0, 10), (1, 20)), done=True)
    assert residual == TopicPositions(((0, 11), (1, 20), (2, 0)))
    assert not tracker.try_claim((0, 12))
    tracker.check_done()
    with pytest.raises(ValueError, match="without checkpointing"):
        _TopicTracker(residual).check_done()


def test_ledger_commits_only_fully_written_ranges_in_order() -> None:
    ledger = OffsetLedger(next_start=100)
    ledger.add_range(150, 160, count=10)
    ledger.acknowledge(range(150, 160))
    assert ledger.advance() is None  # [100, 150) has not even been reported
    ledger.add_range(100, 150, count=48)  # two offsets in the range hold no record
    ledger.acknowledge(range(100, 140))
    assert ledger.advance() is None
    ledger.acknowledge(range(140, 148))
    assert ledger.advance() == 160
    assert (ledger.ranges, ledger.written, ledger.next_start) == ({}, set(), 160)


def test_ledger_of_a_partition_found_later_starts_at_its_opening_range() -> None:
    ledger = OffsetLedger()
    ledger.add_range(0, 3, count=3)
    ledger.acknowledge([0, 1, 2])
    assert ledger.advance() is None  # where the partition starts is not known yet
    fresh = OffsetLedger()
    fresh.add_range(0, 0, count=0)
    fresh.add_range(0, 3, count=3)
    fresh.acknowledge([0, 1, 2, 2])
    assert fresh.advance() == 3


def test_feed_sends_a_json_article_with_an_id_as_it_is() -> None:
    now = datetime(2026, 11, 29, tzinfo=timezone.utc)
    given = article_json(id="as-is")
    raw = RawRecord(given, Origin.file("a.jsonl", 1), MediaType.JSON)
    assert message_of(raw, now) == (b"as-is", given)


def test_feed_parses_pages_and_articles_without_an_id() -> None:
    now = datetime(2026, 11, 29, tzinfo=timezone.utc)
    document = json.loads(article_json(id="x"))
    del document["id"]
    raw = RawRecord(json.dumps(document).encode(), Origin.file("a.json"), MediaType.JSON)
    key, value = message_of(raw, now)
    assert json.loads(value)["id"] == key.decode() != "x"


@pytest.mark.parametrize(
    ("payload", "error"),
    [(b"{broken", MalformedJson), (b"[1, 2]", MalformedJson), (b'{"id": "a"}', MissingField),
     (b'{"id": "a", "body": "\xff"}', InvalidEncoding)],
)  # fmt: skip
def test_feed_refuses_what_the_pipeline_could_not_read(payload: bytes, error: type) -> None:
    raw = RawRecord(payload, Origin.file("a.json"), MediaType.JSON)
    with pytest.raises(error):
        message_of(raw, datetime(2026, 11, 29, tzinfo=timezone.utc))


def _numbers(taken: list[int], failing_after: int | None = None) -> Iterator[int]:
    """0 to 9, noting in ``taken`` each one handed out; or an error after ``failing_after``."""
    for number in range(10):
        if number == failing_after:
            message = "unreadable"
            raise OSError(message)
        taken.append(number)
        yield number


def _one(_: int) -> int:
    return 1


def test_read_ahead_takes_items_until_ready_and_then_passes_everything_on() -> None:
    taken: list[int] = []
    ahead = read_ahead(_numbers(taken), ready=lambda: len(taken) >= 4, budget=100, size=_one)
    assert next(ahead) == 0
    assert taken == [0, 1, 2, 3]  # taken while not ready, none since
    assert [0, *ahead] == list(range(10))


def test_read_ahead_takes_no_more_than_its_budget() -> None:
    taken: list[int] = []
    ahead = read_ahead(_numbers(taken), ready=lambda: False, budget=3, size=_one)
    assert next(ahead) == 0
    assert taken == [0, 1, 2]
    assert [0, *ahead] == list(range(10))


def test_read_ahead_passes_on_what_it_took_before_an_error() -> None:
    passed: list[int] = []
    with pytest.raises(OSError, match="unreadable"):
        passed.extend(read_ahead(_numbers([], failing_after=2), lambda: False, 100, _one))
    assert passed == [0, 1]


def test_read_ahead_over_a_list_or_a_short_input_passes_each_item_once() -> None:
    assert list(read_ahead([0, 1, 2, 3], ready=lambda: False, budget=2, size=_one)) == [0, 1, 2, 3]
    assert list(read_ahead([0, 1], ready=lambda: False, budget=100, size=_one)) == [0, 1]


class _SlowToLearnProducer:
    """A producer that does not know the topic's partitions until it is closed.

    It notes, at its first send, how many input records feed had read by then.
    """

    def __init__(self, records_read: list[int]) -> None:
        self._records_read = records_read
        self._closed = threading.Event()
        self.asked = False
        self.read_at_first_send: int | None = None
        self.sent: list[bytes] = []

    def partitions_for(self, _topic: str) -> set[int]:
        self.asked = True
        self._closed.wait(10)
        return {0}

    def send(self, _topic: str, *, key: bytes, **_: object) -> SimpleNamespace:
        if self.read_at_first_send is None:
            self.read_at_first_send = len(self._records_read)
        self.sent.append(key)
        return SimpleNamespace(is_done=True, succeeded=lambda: True)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._closed.set()


def _feed_through(
    monkeypatch: pytest.MonkeyPatch, paths: list[str], stdin: io.BytesIO | None = None
) -> _SlowToLearnProducer:
    records_read: list[int] = []
    reading = feed_module.raw_inputs

    def counted(*args: object, **kwargs: object) -> Iterator[object]:
        for record in reading(*args, **kwargs):
            records_read.append(1)
            yield record

    producer = _SlowToLearnProducer(records_read)
    monkeypatch.setattr(feed_module, "raw_inputs", counted)
    monkeypatch.setattr(feed_module, "producer", lambda _settings: producer)
    report = feed_module.feed(KafkaSettings("h:1"), "wire", paths, stdin=stdin)
    assert report.sent == len(producer.sent) == 3
    return producer


def test_feed_reads_its_files_while_the_producer_learns_the_topic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lines = tmp_path / "wire.jsonl"
    lines.write_bytes(b"\n".join(article_json(id=f"a-{n}") for n in range(3)))
    producer = _feed_through(monkeypatch, [str(lines)])
    assert producer.asked
    assert producer.read_at_first_send == 3


def test_feed_sends_each_stdin_line_without_waiting_for_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stdin = io.BytesIO(b"\n".join(article_json(id=f"a-{n}") for n in range(3)))
    producer = _feed_through(monkeypatch, ["-"], stdin=stdin)
    assert producer.read_at_first_send == 1


def test_a_stop_request_ends_a_wait_for_input_at_once() -> None:
    requests = StopRequests()
    with pytest.raises(KeyboardInterrupt):
        requests()
    assert requests.requested


def test_held_off_a_first_request_is_noted_and_a_second_stops_at_once() -> None:
    requests = StopRequests()
    with requests.held_off():
        requests()  # noted only
        assert requests.requested
        with pytest.raises(KeyboardInterrupt):
            requests()
    assert requests.repeated


class _ProducerCallingBack:
    """A producer that runs ``on_send(count)`` inside each send and ``on_flush()`` in flush."""

    def __init__(
        self,
        on_send: Callable[[int], None] = lambda _: None,
        on_flush: Callable[[], None] = lambda: None,
    ) -> None:
        self.sent: list[bytes] = []
        self.closed_with: float | None = -1.0
        self._on_send, self._on_flush = on_send, on_flush

    def send(self, _topic: str, *, key: bytes, **_: object) -> SimpleNamespace:
        self.sent.append(key)
        self._on_send(len(self.sent))
        return SimpleNamespace(is_done=True, succeeded=lambda: True)

    def flush(self) -> None:
        self._on_flush()

    def close(self, timeout: float | None = None) -> None:
        self.closed_with = timeout


def _feed_stdin(
    monkeypatch: pytest.MonkeyPatch, producer: _ProducerCallingBack, stop: StopRequests
) -> feed_module.FeedReport:
    stdin = io.BytesIO(b"\n".join(article_json(id=f"a-{n}") for n in range(3)))
    monkeypatch.setattr(feed_module, "producer", lambda _settings: producer)
    return feed_module.feed(KafkaSettings("h:1"), "wire", ["-"], stdin=stdin, stop_requests=stop)


def test_a_stop_during_a_send_ends_the_feed_after_it_counted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = StopRequests()
    producer = _ProducerCallingBack(on_send=lambda n: n == 2 and stop())
    report = _feed_stdin(monkeypatch, producer, stop)
    assert report.stopped
    assert producer.sent == [b"a-0", b"a-1"]
    assert report.sent == 2  # the send under way went, and was counted once
    assert producer.closed_with is None  # closing waited for what was handed over


def test_a_second_stop_while_flushing_ends_it_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = StopRequests()
    producer = _ProducerCallingBack(on_send=lambda n: n == 1 and stop(), on_flush=stop)
    with pytest.raises(KeyboardInterrupt):
        _feed_stdin(monkeypatch, producer, stop)
    assert producer.closed_with == 0


def test_a_first_stop_while_the_last_sends_flush_lets_them_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = StopRequests()
    try:
        report = _feed_stdin(monkeypatch, _ProducerCallingBack(on_flush=stop), stop)
    except KeyboardInterrupt:  # a failure here, not the end of the whole test run
        pytest.fail("a first stop interrupted the final flush")
    assert (report.sent, report.stopped) == (3, False)  # its input was all sent
