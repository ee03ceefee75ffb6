"""Kafka addresses, client settings, and the few admin operations the pipeline needs.

Example:
    topic = KafkaTopic.parse("kafka://127.0.0.1:9092/wire")
    settings = KafkaSettings(topic.bootstrap)
    consumer = KafkaConsumer(**settings.client_config(KafkaConsumer))
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import (
    AuthorizationError,
    IncompatibleBrokerVersion,
    InvalidReplicationFactorError,
    KafkaConfigurationError,
    KafkaError,
    NoError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
    for_code,
)
from kafka.structs import OffsetAndMetadata

from pipeline.io.kafka_eof import deliver_replies_before_eof
from transforms.errors import MessageTooLarge, WirenewsError

__all__ = [
    "CONTENT_TYPE_HEADER",
    "KAFKA_SCHEME",
    "ORIGIN_HEADER",
    "OUTAGE_PATIENCE_SECONDS",
    "BrokerWatch",
    "KafkaSettings",
    "KafkaTopic",
    "KafkaUnavailable",
    "commit_offsets",
    "create_topic",
    "ensure_topics",
    "is_kafka_url",
    "message_too_large",
    "parse_start",
    "partitions_of",
    "patiently",
    "producer",
    "producer_config",
    "retriable",
    "start_offsets",
    "unreachable",
]

LOGGER = logging.getLogger(__name__)
# The kafka-python clients the pipeline makes, each taking its own set of settings.
KafkaClient = KafkaConsumer | KafkaProducer | KafkaAdminClient
KAFKA_SCHEME = "kafka://"
# Headers of an article message: how to parse its value, and where it was read from.
CONTENT_TYPE_HEADER = "content-type"
ORIGIN_HEADER = "wirenews-origin"
# How long a client waits for the first broker to answer before saying so.
BOOTSTRAP_TIMEOUT_MS = 10_000
START_POSITIONS = ("earliest", "latest", "committed")
# How long a step keeps waiting through a broker outage before the job gives up: as long as
# the producer keeps retrying a message (pipeline/io/kafka_write.py).
OUTAGE_PATIENCE_SECONDS = 600.0
_RETRY_SECONDS = 2.0
# A topic's largest record batch, so its largest message: Kafka's own name for it.
_MESSAGE_LIMIT = "max.message.bytes"
# kafka-python settings that hold secrets: never logged, shown redacted.
_SECRET_KEYS = frozenset({"sasl_plain_password", "ssl_password", "sasl_oauth_token_provider"})
# Every setting some kafka-python client takes; anything else is a typo, said so up front.
_KNOWN_KEYS = frozenset(
    set(KafkaConsumer.DEFAULT_CONFIG)
    | set(KafkaProducer.DEFAULT_CONFIG)
    | set(KafkaAdminClient.DEFAULT_CONFIG)
)
# The broker refused us (credentials, permissions, setup): waiting would only hide it.
_REFUSALS = (
    SaslAuthenticationFailedError,
    AuthorizationError,
    UnsupportedSaslMechanismError,
    KafkaConfigurationError,
)


class KafkaUnavailable(WirenewsError):
    """No broker answered, the broker refused us, or the topic does not exist."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class _RememberRefusals(logging.Handler):
    """Remembers the last refused login kafka-python logged.

    kafka-python 3.0 logs a refused login while bootstrapping but then raises only a
    timeout, which looks like a broker outage: the refusal lets us say what happened.
    """

    last: tuple[float, BaseException] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, _REFUSALS):
                _RememberRefusals.last = (time.monotonic(), arg)


def _recent_refusal() -> BaseException | None:
    """A refusal kafka-python logged within the last bootstrap timeout, if any."""
    seen = _RememberRefusals.last
    if seen and time.monotonic() - seen[0] < BOOTSTRAP_TIMEOUT_MS / 1000 + 5:
        return seen[1]
    return None


# Its own records only reach our handler: the CLI keeps kafka-python's logs quiet.
_MANAGER_LOG = logging.getLogger("kafka.net.manager")
_MANAGER_LOG.setLevel(logging.WARNING)
_MANAGER_LOG.propagate = False
_MANAGER_LOG.addHandler(_RememberRefusals())
# A refusal comes as a reply and a hang-up: without this the reply is often lost.
deliver_replies_before_eof()


def is_kafka_url(text: str | None) -> bool:
    """Whether a --source/--output names a Kafka topic rather than files."""
    return bool(text) and text.startswith(KAFKA_SCHEME)


@dataclass(frozen=True)
class KafkaTopic:
    """``kafka://HOST:PORT[,HOST:PORT...]/TOPIC``."""

    bootstrap: str
    topic: str

    @classmethod
    def parse(cls, url: str) -> KafkaTopic:
        """Parse a Kafka URL, saying what is wrong with a bad one."""
        if not is_kafka_url(url):
            message = f"not a Kafka URL: {url!r} (expected kafka://HOST:PORT/TOPIC)"
            raise WirenewsError(message)
        bootstrap, _, topic = url[len(KAFKA_SCHEME) :].partition("/")
        if not bootstrap or not topic or "/" in topic:
            message = f"bad Kafka URL {url!r}: expected kafka://HOST:PORT/TOPIC"
            raise WirenewsError(message)
        return cls(bootstrap=bootstrap, topic=topic)

    def __str__(self) -> str:
        return f"{KAFKA_SCHEME}{self.bootstrap}/{self.topic}"


@dataclass(frozen=True)
class KafkaSettings:
    """What every client needs: the bootstrap servers and pass-through settings.

    ``extra`` holds kafka-python settings given as ``--kafka-config KEY=VALUE``
    (``security_protocol``, ``sasl_mechanism``, ``ssl_cafile``…; the Java client's
    dotted names, ``security.protocol``, mean the same). The SASL
    password is never an option value: it is read from the environment variable
    named by ``password_env`` when a client is made, so it reaches no log.
    """

    bootstrap: str
    extra: tuple[tuple[str, Any], ...] = field(default=())
    password_env: str | None = None

    @classmethod
    def from_flags(
        cls, bootstrap: str, config: Iterable[str] = (), password_env: str | None = None
    ) -> KafkaSettings:
        """Build settings from ``KEY=VALUE`` flags, with numbers and booleans typed.

        Keys may be kafka-python's (``security_protocol``) or the Java client's
        (``security.protocol``), which people copy from their cluster's docs.
        """
        extra = []
        for item in config:
            given, sep, value = item.partition("=")
            key = given.strip().replace(".", "_")
            if not sep or not key:
                # Never echo the flag: a misplaced secret would reach the terminal and logs.
                message = "--kafka-config takes KEY=VALUE; " + (
                    "the key is empty" if sep else "this one has no '='"
                )
                raise WirenewsError(message)
            if key in _SECRET_KEYS:
                message = f"pass {key} through --kafka-password-env, not on the command line"
                raise WirenewsError(message)
            if key not in _KNOWN_KEYS:
                message = f"--kafka-config {key}: not a setting of kafka-python's clients"
                raise WirenewsError(message)
            extra.append((key, _typed(value.strip())))
        return cls(bootstrap=bootstrap, extra=tuple(extra), password_env=password_env)

    def client_config(self, client: type[KafkaClient]) -> dict[str, Any]:
        """Keyword arguments for a kafka-python ``client`` (class): the settings it takes.

        A producer's ``max_request_size`` given for a job would otherwise stop its
        consumer and admin client, which refuse settings they do not know.
        """
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap.split(","),
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            "client_id": "wirenews",
            **{key: value for key, value in self.extra if key in client.DEFAULT_CONFIG},
        }
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                message = f"environment variable {self.password_env} (the SASL password) is unset"
                raise WirenewsError(message)
            config["sasl_plain_password"] = password
        return config

    def sized_for(self, message_limit: int | None) -> KafkaSettings:
        """These settings, a producer's largest message at most ``message_limit`` (a topic's).

        The producer then refuses a larger message itself; the broker's refusal would
        fail an idempotent producer for good, every later send with it.
        """
        if message_limit is None:
            return self
        others = tuple((key, value) for key, value in self.extra if key != "max_request_size")
        given = dict(self.extra).get("max_request_size")
        largest = min(given, message_limit) if isinstance(given, int) else message_limit
        return replace(self, extra=(*others, ("max_request_size", largest)))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.extra)
        return f"KafkaSettings(bootstrap={self.bootstrap!r}, extra=[{shown}])"


def _typed(value: str) -> Any:
    if value.lower() in {"true", "false"}:
        return value.lower() == "true"
    try:
        return int(value)
    except ValueError:
        return value


def parse_start(text: str) -> str | datetime:
    """``earliest``, ``latest``, ``committed``, or an ISO 8601 time (UTC if no zone)."""
    if text in START_POSITIONS:
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        message = f"--start takes {', '.join(START_POSITIONS)} or an ISO 8601 time, got {text!r}"
        raise WirenewsError(message) from exc
    return moment if moment.tzinfo else moment.astimezone()


def unreachable(settings: KafkaSettings, error: Exception) -> KafkaUnavailable:
    """The one error for a broker that does not answer or refuses us, naming where and why."""
    refusal = error if isinstance(error, _REFUSALS) else _recent_refusal()
    if refusal is not None:
        message = f"Kafka at {settings.bootstrap} refused the client: {_first_line(refusal)}"
        return KafkaUnavailable(message, refused=True)
    message = (
        f"cannot reach Kafka at {settings.bootstrap}: no broker answered within "
        f"{BOOTSTRAP_TIMEOUT_MS // 1000} s ({type(error).__name__})"
    )
    return KafkaUnavailable(message)


def retriable(error: BaseException) -> bool:
    """Whether ``error`` is a broker not answering (worth waiting out), not a refusal.

    A wrong password or a missing topic is not retriable: waiting would only hide it.
    """
    if isinstance(error, KafkaUnavailable) and error.refused:
        return False
    cause = error.__cause__ if isinstance(error, KafkaUnavailable) else error
    if isinstance(cause, InvalidReplicationFactorError):
        return True  # a broker shutting down or starting counts none alive: creating a topic waits
    return (
        isinstance(cause, KafkaError) and bool(cause.retriable) and not isinstance(cause, _REFUSALS)
    )


class BrokerWatch:
    """One warning when the broker stops answering a step, one line when it is back.

    A streaming job waits out an outage; its log should say so once, not once per retry.
    """

    def __init__(self, settings: KafkaSettings, step: str) -> None:
        self._settings = settings
        self._step = step
        self._since: float | None = None

    @property
    def in_outage(self) -> bool:
        """Whether the broker is known to be down for this step."""
        return self._since is not None

    def trouble(self, error: BaseException) -> None:
        """The broker did not answer; warns on the first failure of an outage only."""
        if self._since is None:
            self._since = time.monotonic()
            LOGGER.warning(
                "Kafka at %s is not answering (%s: %s); %s waits and retries",
                self._settings.bootstrap,
                type(error).__name__,
                _first_line(error),
                self._step,
            )

    def ok(self) -> None:
        """The broker answered; says so if it had been down."""
        if self._since is not None:
            LOGGER.warning(
                "Kafka at %s answers again after %.0f s; %s carries on",
                self._settings.bootstrap,
                time.monotonic() - self._since,
                self._step,
            )
            self._since = None


def _first_line(error: BaseException) -> str:
    """The error's first line, without the ``[Error 58] ClassName: `` kafka-python starts with."""
    line = (str(error).splitlines() or [""])[0]
    return re.sub(rf"^(\[Error -?\d+\] )?{type(error).__name__}: ", "", line)[:200]


_T = TypeVar("_T")


def patiently(
    settings: KafkaSettings,
    step: str,
    call: Callable[[], _T],
    patience: float = OUTAGE_PATIENCE_SECONDS,
) -> _T:
    """``call()``, retried while the broker does not answer, for up to ``patience`` seconds.

    Runners such as Prism fail the whole job when a bundle raises, so a step that
    needs the broker waits for it instead, like the producer does.
    """
    watch = BrokerWatch(settings, step)
    deadline = time.monotonic() + patience
    while True:
        try:
            result = call()
        except (KafkaError, KafkaUnavailable) as exc:
            if not retriable(exc) or time.monotonic() >= deadline:
                raise
            watch.trouble(exc)
            time.sleep(_RETRY_SECONDS)
            continue
        watch.ok()
        return result


def consumer(settings: KafkaSettings, **overrides: Any) -> KafkaConsumer:
    """A consumer that reads what it is told: no group membership, no auto-commit.

    ``overrides`` win over the settings (a reader's shorter bootstrap timeout, say).
    """
    try:
        return KafkaConsumer(
            **{**settings.client_config(KafkaConsumer), "enable_auto_commit": False, **overrides}
        )
    except KafkaError as exc:
        raise unreachable(settings, exc) from exc


def producer_config(settings: KafkaSettings, **tuning: Any) -> dict[str, Any]:
    """An idempotent ``acks=all`` producer: ``tuning`` over our defaults, ``--kafka-config`` wins.

    ``max_request_size`` stays at kafka-python's default, Kafka's 1 MiB, the
    largest message a topic takes unless its ``max.message.bytes`` is raised, or
    at what the settings say (:meth:`KafkaSettings.sized_for` a topic). A larger
    message is then refused by the producer itself, alone; refused by the broker,
    it would fail the idempotent producer for good, every later send with it.
    """
    return {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 20,
        "batch_size": 512 * 1024,
        **tuning,
        **settings.client_config(KafkaProducer),
    }


def producer(settings: KafkaSettings, **tuning: Any) -> KafkaProducer:
    """A producer with :func:`producer_config`'s settings."""
    try:
        return KafkaProducer(**producer_config(settings, **tuning))
    except KafkaError as exc:
        raise unreachable(settings, exc) from exc


def message_too_large(
    what: str, value_size: int, client: KafkaProducer, *, topic_limit: bool = False
) -> MessageTooLarge:
    """Why ``client`` refused to send ``what``, whose value is ``value_size`` bytes; what to do.

    ``topic_limit``: the producer's limit is the topic's own ``max.message.bytes``.
    """
    limit = client.config["max_request_size"]
    message = f"{what} is {value_size:,} bytes, with its key and headers over " + (
        f"{limit:,} bytes, the largest message the topic takes (its max.message.bytes)"
        if topic_limit
        else f"the producer's max_request_size of {limit:,} bytes; if the topic's "
        "max.message.bytes is larger, pass --kafka-config max_request_size=<that size>"
    )
    return MessageTooLarge(message)


def partitions_of(client: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, in order; a missing topic is an error."""
    partitions = client.partitions_for_topic(topic)
    if not partitions:
        message = f"topic {topic!r} does not exist (create it, or feed it with --partitions N)"
        raise KafkaUnavailable(message)
    return [TopicPartition(topic, p) for p in sorted(partitions)]


def start_offsets(
    settings: KafkaSettings,
    partitions: list[TopicPartition],
    start: str | datetime,
    group: str | None,
) -> dict[TopicPartition, int]:
    """Where to start reading each partition.

    ``committed`` falls back to ``earliest`` for partitions the group has not
    committed; a time starts at the first record at or after it.
    """
    if start == "committed" and not group:
        message = "--start committed needs --group"
        raise WirenewsError(message)
    client = consumer(settings, group_id=group if start == "committed" else None)
    try:
        earliest = client.beginning_offsets(partitions)
        if start == "earliest":
            return dict(earliest)
        latest = client.end_offsets(partitions)
        if start == "latest":
            return dict(latest)
        if start == "committed":
            committed = {tp: client.committed(tp) for tp in partitions}
            return {
                tp: earliest[tp] if committed[tp] is None else committed[tp] for tp in partitions
            }
        if not isinstance(start, datetime):
            message = f"unknown start position {start!r}"
            raise WirenewsError(message)
        millis = int(start.timestamp() * 1000)
        found = client.offsets_for_times(dict.fromkeys(partitions, millis))
        return {tp: found[tp].offset if found.get(tp) else latest[tp] for tp in partitions}
    finally:
        client.close()


def commit_offsets(
    settings: KafkaSettings, group: str, offsets: Mapping[TopicPartition, int]
) -> None:
    """Commit ``offsets`` (the next offset to read, per partition) for ``group``."""
    if not offsets:
        return
    committer = consumer(settings, group_id=group)
    try:
        committer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    finally:
        committer.close()
    LOGGER.info(
        "committed offsets for group %s: %s",
        group,
        ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, o in sorted(offsets.items())),
    )


def create_topic(
    settings: KafkaSettings,
    topic: str,
    partitions: int,
    config: Mapping[str, str] | None = None,
) -> bool:
    """Create ``topic`` with ``partitions`` partitions; False if it already existed.

    The replication factor is the cluster's default.
    """
    admin = KafkaAdminClient(**settings.client_config(KafkaAdminClient))
    try:
        admin.create_topics([NewTopic(topic, partitions, -1, topic_configs=dict(config or {}))])
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()
    return True


def ensure_topics(settings: KafkaSettings, topics: Iterable[str]) -> dict[str, int]:
    """Create those of ``topics`` that do not exist yet; the largest message each takes.

    A job checks its output topics at launch, so that no broker answering fails it
    in seconds, not after its writers' ten minutes of patience, and so that a topic
    need not wait for the broker's auto-creation, which may be off. Missing topics
    are made as the cluster's defaults make them. A topic whose ``max.message.bytes``
    Kafka would not tell is left out of the answer.

    Raises:
        KafkaUnavailable: no broker answered, or Kafka refused to create a missing topic.
    """
    wanted = list(dict.fromkeys(topics))
    try:
        admin = KafkaAdminClient(**settings.client_config(KafkaAdminClient))
        try:
            _create_missing(admin, wanted)
            return _message_limits(admin, wanted)
        finally:
            admin.close()
    except IncompatibleBrokerVersion:  # before Kafka 2.4: the topics are left to the broker
        LOGGER.info("this Kafka cannot create topics with its defaults: %s", ", ".join(wanted))
        return {}
    except KafkaError as exc:
        raise unreachable(settings, exc) from exc


def _create_missing(admin: KafkaAdminClient, topics: list[str]) -> None:
    answer = admin.create_topics({topic: {} for topic in topics}, raise_errors=False)
    refused = {
        result["name"]: f"{for_code(result['error_code']).__name__}"
        + (f" ({result['error_message']})" if result["error_message"] else "")
        for result in answer["topics"]
        if for_code(result["error_code"]) not in (NoError, TopicAlreadyExistsError)
    }
    # Not allowed to create topics: enough if they are there already.
    missing = sorted(set(refused) - set(admin.list_topics())) if refused else []
    if missing:
        name = missing[0]
        message = f"topic {name} does not exist, and Kafka would not create it: {refused[name]}"
        raise KafkaUnavailable(message, refused=True)


def _message_limits(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, topic, configs=[_MESSAGE_LIMIT])
        for topic in topics
    ]
    try:
        described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    except KafkaError as exc:  # not allowed to describe them, say: the producer's default stands
        LOGGER.info("cannot learn the output topics' largest message (%s)", exc)
        return {}
    return {
        topic: int(configs[_MESSAGE_LIMIT]["value"])
        for topic, configs in described.items()
        if _MESSAGE_LIMIT in configs
    }
