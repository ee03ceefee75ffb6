"""``wirenews feed``: publish article files onto a Kafka topic, one message per article.

Each article is parsed as the pipeline would parse it, so only articles are sent:
key = the article id, value = the article as JSON (the input format's fields, with
dateline and byline taken out of the body), headers = content type and origin.
Files that cannot be parsed are reported and skipped.

Example:
    report = feed(settings, "wire", ["seeds/"], partitions=3)
    print(report.summary())
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, TypeVar

from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError
from kafka.producer.future import FutureRecordMetadata

from pipeline.io.files import expand_source, read_file
from pipeline.io.kafka_client import (
    CONTENT_TYPE_HEADER,
    ORIGIN_HEADER,
    KafkaSettings,
    create_topic,
    message_too_large,
    producer,
)
from transforms.errors import ArticleError, InvalidEncoding
from transforms.parse import DEFAULT_MAX_RECORD_BYTES, article_document, parse_record
from transforms.records import Article, DeadLetter, MediaType, Origin, RawRecord

__all__ = ["FeedReport", "StopRequests", "article_message", "feed", "message_of", "read_ahead"]

LOGGER = logging.getLogger(__name__)
STDIN = "-"
_PROGRESS_SECONDS = 5.0
_JSON = MediaType.JSON.value.encode()
# At most this many bytes of messages wait for the topic's partitions: as many as
# the producer's own buffer holds.
_READ_AHEAD_BYTES = 32 * 1024 * 1024
_T = TypeVar("_T")
Message = tuple[str, bytes, bytes]  # origin, key, value


@dataclass
class FeedReport:
    """What a feed did."""

    topic: str
    sent: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    stopped: bool = False  # asked to stop (Ctrl-C, SIGTERM) before the end of its input

    def summary(self) -> str:
        """One line for people."""
        rate = self.sent / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0
        return (
            f"{'stopped: ' if self.stopped else ''}"
            f"sent {_counted(self.sent, 'article')} to {self.topic} "
            f"in {self.elapsed_seconds:.1f} s "
            f"({rate:,.0f}/s); skipped {len(self.skipped):,} unparseable; "
            f"failed {len(self.failed):,}"
        )


class StopRequests:
    """A signal handler that ends a feed between two messages, never inside a send.

    Installed for SIGINT and SIGTERM. A first request raises KeyboardInterrupt at
    once while the feed reads or waits for input (a line on stdin may never come),
    and is only noted while the feed holds it off: inside a send, where an
    exception could leave the producer's batches half-built, and while what was
    handed over is flushed. A second request raises at once, anywhere.
    """

    def __init__(self) -> None:
        self.requested = False
        self.repeated = False
        self._holding = False

    def __call__(self, *_: object) -> None:
        """The handler: stop now, unless held off (then only the second time)."""
        if self.requested:
            self.repeated = True
            raise KeyboardInterrupt
        self.requested = True
        if not self._holding:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def held_off(self) -> Iterator[None]:
        """A first request inside is only noted: the caller checks ``requested`` after."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False


def article_message(article: Article) -> bytes:
    """The article as a JSON object in the pipeline's own input format."""
    published = article.published_at.isoformat() if article.published_at else None
    document = {
        "id": article.id,
        "url": article.url,
        "source": article.source,
        "published_at": published,
        "headline": article.headline,
        "dateline": article.dateline,
        "byline": article.byline,
        "body": article.body,
    }
    return json.dumps(
        {k: v for k, v in document.items() if v is not None}, ensure_ascii=False
    ).encode()


def message_of(raw: RawRecord, now: datetime) -> tuple[bytes, bytes]:
    """Key and value of the message for one input record.

    A JSON article that names its id goes as it is: the pipeline parses it, so
    checking that it is an object with a body is enough here, and feeding stays
    cheap. Pages, and articles without an id, are parsed here into the
    pipeline's JSON input format, keyed by the id the pipeline would give them.

    Raises:
        ArticleError: the record is not an article the pipeline could read.
    """
    if raw.media_type is MediaType.JSON:
        try:
            text = raw.payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = f"not UTF-8 text: {exc.reason}"
            raise InvalidEncoding(message) from exc
        document = article_document(text)
        article_id = document.get("id")
        if isinstance(article_id, str) and article_id.strip():
            return article_id.encode(), raw.payload
    article = parse_record(raw, ingested_at=now)
    return article.id.encode(), article_message(article)


def raw_inputs(
    paths: Iterable[str],
    stdin: IO[bytes] | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[RawRecord | DeadLetter]:
    """Every record of every path; ``-`` reads JSON Lines from standard input."""
    for path in paths:
        if path == STDIN:
            stream = stdin or sys.stdin.buffer
            for number, line in enumerate(stream, start=1):
                if line.strip():
                    yield RawRecord(
                        line.rstrip(b"\r\n"), Origin.file("<stdin>", number), MediaType.JSON
                    )
            continue
        for file in expand_source(path):
            yield from read_file(file, max_record_bytes)


def feed(
    settings: KafkaSettings,
    topic: str,
    paths: Iterable[str],
    *,
    partitions: int | None = None,
    stdin: IO[bytes] | None = None,
    on_progress: Callable[[FeedReport], None] | None = None,
    stop_requests: StopRequests | None = None,
) -> FeedReport:
    """Publish every article under ``paths`` to ``topic``.

    With ``stop_requests`` installed as the signal handler, a first stop request
    ends the feed between two messages: what was handed to the producer is still
    sent, and the report says it stopped. A second one raises KeyboardInterrupt at
    once, leaving what the producer still holds unsent.

    Raises:
        KafkaUnavailable: no broker answered.
    """
    started = time.monotonic()
    report = FeedReport(topic=topic)
    paths = list(paths)
    stop = stop_requests or StopRequests()  # never installed: nothing is held off
    client = producer(settings)
    try:
        if partitions and create_topic(settings, topic, partitions):
            LOGGER.info("created topic %s with %s", topic, _counted(partitions, "partition"))
        messages = _messages(raw_inputs(paths, stdin), report)
        if STDIN not in paths:  # a line on stdin goes at once, never kept for the next
            messages = _read_while_asking(client, topic, messages)
        pending: list[tuple[str, FutureRecordMetadata]] = []
        next_progress = started + _PROGRESS_SECONDS
        try:
            for origin, key, value in messages:
                with stop.held_off():
                    _send(client, topic, (origin, key, value), pending, report)
                    if time.monotonic() >= next_progress:
                        next_progress = time.monotonic() + _PROGRESS_SECONDS
                        _settle(pending, report)
                        report.elapsed_seconds = time.monotonic() - started
                        if on_progress:
                            on_progress(report)
                if stop.requested:
                    raise KeyboardInterrupt  # asked while sending: now, between two messages
        except KeyboardInterrupt:
            if stop.repeated:
                raise
            report.stopped = True
            LOGGER.info("stopping: sending what was handed over (ask again to stop at once)")
        with stop.held_off():
            client.flush()
            _settle(pending, report)
    finally:
        if stop.repeated:  # asked twice: nothing more waits (a flush that cannot wait raises)
            with contextlib.suppress(KafkaError):
                client.close(timeout=0)
        else:
            client.close()
    report.elapsed_seconds = time.monotonic() - started
    return report


def read_ahead(
    items: Iterable[_T], ready: Callable[[], bool], budget: int, size: Callable[[_T], int]
) -> Iterator[_T]:
    """``items`` in order, the first ones taken before any is passed on, until ``ready()``.

    Taking stops once the taken items' sizes add up to ``budget``, so memory stays
    bounded however long the wait. An error while taking comes after the items taken
    before it, as it would have without the read-ahead.
    """
    iterator = iter(items)
    early: deque[_T] = deque()
    taken = 0
    failure: Exception | None = None
    try:
        for item in iterator:
            early.append(item)
            taken += size(item)
            if taken >= budget or ready():
                break
    except Exception as error:
        failure = error
    while early:
        yield early.popleft()
    if failure is not None:
        raise failure
    yield from iterator


def _messages(inputs: Iterable[RawRecord | DeadLetter], report: FeedReport) -> Iterator[Message]:
    """Origin, key and value of each article; what is not one is skipped into ``report``."""
    now = datetime.now(timezone.utc)
    for item in inputs:
        if isinstance(item, DeadLetter):
            _skip(report, str(item.origin), item.error_message)
            continue
        try:
            key, value = message_of(item, now)
        except ArticleError as exc:
            _skip(report, str(item.origin), str(exc))
            continue
        yield str(item.origin), key, value


def _read_while_asking(
    client: KafkaProducer, topic: str, messages: Iterator[Message]
) -> Iterator[Message]:
    """``messages``, read ahead while the producer asks for the topic's partitions.

    kafka-python 3.0 counts its bootstrap as a metadata refresh and waits its
    default 100 ms retry backoff before the next, whatever retry_backoff_ms says,
    so the first send would wait that long for the topic; feed reads meanwhile. It
    asks once there is a first message: an input with none never asks for the topic.
    """
    first = next(messages, None)
    if first is None:
        return
    asking = threading.Thread(
        target=_partitions_for, args=(client, topic), name="feed-metadata", daemon=True
    )
    asking.start()
    yield from read_ahead(
        itertools.chain([first], messages),
        ready=lambda: not asking.is_alive(),
        budget=_READ_AHEAD_BYTES,
        size=lambda message: len(message[2]),
    )


def _partitions_for(client: KafkaProducer, topic: str) -> None:
    # The first send meets the same error (a bad topic name, a timeout) and reports it.
    with contextlib.suppress(Exception):
        client.partitions_for(topic)


def _counted(count: int, thing: str) -> str:
    """``1 article``, ``2,000 articles``."""
    return f"{count:,} {thing}{'' if count == 1 else 's'}"


def _skip(report: FeedReport, origin: str, reason: str) -> None:
    LOGGER.warning("skipped %s: %s", origin, reason)
    report.skipped.append(origin)


def _send(
    client: KafkaProducer,
    topic: str,
    message: Message,
    pending: list[tuple[str, FutureRecordMetadata]],
    report: FeedReport,
) -> None:
    """Hand ``message`` to the producer, or count it failed if it is too large to send."""
    origin, key, value = message
    try:
        future = client.send(
            topic,
            key=key,
            value=value,
            headers=[(CONTENT_TYPE_HEADER, _JSON), (ORIGIN_HEADER, origin.encode())],
        )
    except MessageSizeTooLargeError:
        _fail(report, origin, message_too_large("the article", len(value), client))
        return
    pending.append((origin, future))


def _settle(pending: list[tuple[str, FutureRecordMetadata]], report: FeedReport) -> None:
    """Count the sends that completed; keep the rest pending."""
    still = []
    for origin, future in pending:
        if not future.is_done:
            still.append((origin, future))
        elif future.succeeded():
            report.sent += 1
        else:
            _fail(report, origin, future.exception)
    pending[:] = still


def _fail(report: FeedReport, origin: str, error: BaseException) -> None:
    LOGGER.error("failed to send %s: %s", origin, error)
    report.failed.append(origin)
