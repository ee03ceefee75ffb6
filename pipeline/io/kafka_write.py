"""Writing records to a Kafka topic as Avro, one message per record.

Key: the article id (a dead letter's origin). Value: Avro, Confluent-framed with
a schema registry, else bare with headers naming the schema and its fingerprint
(the schema itself is published once to ``<topic>-schemas``). The producer is
idempotent with ``acks=all``; a bundle completes only once the broker has every
message, and a broker outage makes it wait and retry rather than drop records.
Streaming jobs get the written offsets back, so the source's offsets can be
committed. A record too large for the topic comes out as a dead letter instead:
the producer is sized to the topic's ``max.message.bytes`` (``message_limit``),
so that it refuses such a record itself, alone.

Example:
    written = articles | WriteKafkaAvro(settings, "wire-out", "Article", registry_url=None)
    acks, refused = written[WriteKafkaAvro.WRITTEN], written[WriteKafkaAvro.REFUSED]
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import BoundedWindow
from apache_beam.utils.windowed_value import WindowedValue
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from kafka.producer.future import FutureRecordMetadata

from pipeline.io.avro import to_avro
from pipeline.io.kafka_avro import (
    SCHEMA_FINGERPRINT_HEADER,
    SCHEMA_NAME_HEADER,
    SchemaRegistry,
    encode_body,
    frame_confluent,
    schemas_topic,
    subject,
)
from pipeline.io.kafka_client import (
    BrokerWatch,
    KafkaSettings,
    create_topic,
    message_too_large,
    patiently,
    producer,
)
from pipeline.io.windowed_files import source_key
from schemas import fingerprint, load_schema, schema_text
from transforms.deadletters import MAX_DEAD_LETTER_PAYLOAD, make_dead_letter
from transforms.metrics import StepMetrics
from transforms.records import DeadLetter

__all__ = ["WriteKafkaAvro"]

LOGGER = logging.getLogger(__name__)
# How long the producer keeps retrying a message through a broker outage.
_DELIVERY_TIMEOUT_MS = 10 * 60 * 1000
# How long a flush waits before the log says the broker is slow to acknowledge.
_FLUSH_CHECK_SECONDS = 10.0


def message_key(record: Any) -> bytes:
    """An article's id; for a dead letter, where it came from."""
    return (getattr(record, "id", None) or str(record.origin)).encode()


class _WriteKafkaFn(beam.DoFn):
    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        *,
        schema_name: str,
        registry_url: str | None,
        step: str,
        message_limit: int | None,
    ) -> None:
        self._settings = settings.sized_for(message_limit)
        self._sized_to_topic = message_limit is not None
        self._topic = topic
        self._schema_name = schema_name
        self._registry_url = registry_url
        self._step = step

    def setup(self) -> None:
        self._schema = load_schema(self._schema_name)
        self._metrics = StepMetrics(self._step)
        self._watch = BrokerWatch(self._settings, f"writing to {self._topic}")
        self._producer = patiently(
            self._settings,
            f"writing to {self._topic}",
            # Waits out broker outages: retries each message, and blocks a send, that long.
            lambda: producer(
                self._settings,
                delivery_timeout_ms=_DELIVERY_TIMEOUT_MS,
                max_block_ms=_DELIVERY_TIMEOUT_MS,
            ),
        )
        text = schema_text(self._schema_name)
        if self._registry_url:
            self._schema_id: int | None = SchemaRegistry(self._registry_url).register(
                subject(self._topic), text
            )
            self._headers: list[tuple[str, bytes]] = []
            return
        self._schema_id = None
        schema_fingerprint = fingerprint(text)
        self._headers = [
            (SCHEMA_NAME_HEADER, str(self._schema["name"]).encode()),
            (SCHEMA_FINGERPRINT_HEADER, schema_fingerprint.encode()),
        ]
        patiently(
            self._settings,
            f"writing to {self._topic}",
            lambda: create_topic(
                self._settings,
                schemas_topic(self._topic),
                1,
                config={"cleanup.policy": "compact"},
            ),
        )
        self._producer.send(
            schemas_topic(self._topic), key=schema_fingerprint.encode(), value=text.encode()
        ).get(timeout=_DELIVERY_TIMEOUT_MS / 1000)

    def teardown(self) -> None:
        self._producer.close()

    def start_bundle(self) -> None:
        self._pending: list[FutureRecordMetadata] = []
        self._written: dict[tuple[BoundedWindow, str], list[int]] = defaultdict(list)

    def process(
        self,
        record: Any,
        window: BoundedWindow = beam.DoFn.WindowParam,
    ) -> Iterator[TaggedOutput]:
        self._metrics.received()
        datum = to_avro(record, self._schema)
        body = encode_body(self._schema, datum)
        value = body if self._schema_id is None else frame_confluent(self._schema_id, body)
        try:
            sent = self._producer.send(
                self._topic, key=message_key(record), value=value, headers=self._headers
            )
        except MessageSizeTooLargeError:
            yield TaggedOutput(WriteKafkaAvro.REFUSED, self._refused(record, datum, len(value)))
            return
        self._pending.append(sent)
        if record.origin.offset is not None:
            self._written[window, source_key(record.origin)].append(record.origin.offset)

    def _refused(self, record: Any, datum: dict[str, Any], size: int) -> DeadLetter:
        """The dead letter of a record the producer would not send, holding it as JSON."""
        what = f"the {self._schema_name} record"
        error = message_too_large(what, size, self._producer, topic_limit=self._sized_to_topic)
        if isinstance(record, DeadLetter):
            raise error  # nowhere left to put it; dead letters keep 64 KiB of a payload at most
        self._metrics.dead_lettered()
        return make_dead_letter(
            json.dumps(datum, ensure_ascii=False, default=str).encode(),
            record.origin,
            stage="write",
            error=error,
            failed_at=datetime.now(timezone.utc),
            max_payload=MAX_DEAD_LETTER_PAYLOAD,
        )

    def finish_bundle(self) -> Iterator[WindowedValue]:
        self._flush()
        for sent in self._pending:
            sent.get()  # raises if the broker never took it: the bundle is retried
        self._metrics.ok(len(self._pending))
        for (window, key), offsets in self._written.items():
            yield WindowedValue((key, tuple(offsets)), window.max_timestamp(), [window])

    def _flush(self) -> None:
        """Wait until the broker has every message; through an outage, say so once."""
        while True:
            try:
                self._producer.flush(timeout=_FLUSH_CHECK_SECONDS)
            except KafkaTimeoutError as exc:
                # The producer retries on its own, up to its delivery timeout; we only wait.
                self._watch.trouble(exc)
                continue
            self._watch.ok()
            return


class WriteKafkaAvro(beam.PTransform):
    """Records → Avro messages on ``topic``.

    Outputs ``(source, offsets written)`` under ``WRITTEN``, and under ``REFUSED``
    the dead letters of records too large to send, for the dead-letter output.
    """

    WRITTEN = "written"
    REFUSED = "refused"

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        schema_name: str,
        *,
        registry_url: str | None,
        counter: str,
        message_limit: int | None = None,
    ) -> None:
        super().__init__()
        load_schema(schema_name)  # fail at construction if it is missing
        self._fn = _WriteKafkaFn(
            settings,
            topic,
            schema_name=schema_name,
            registry_url=registry_url,
            step=counter,
            message_limit=message_limit,
        )

    def expand(self, records: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        """Send every record; acknowledge offsets once the broker has them."""
        return records | "Send" >> beam.ParDo(self._fn).with_outputs(
            self.REFUSED, main=self.WRITTEN
        )
