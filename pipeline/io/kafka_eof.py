"""kafka-python hands a connection's last reply to its protocol before the connection's end.

kafka-python 3.0.12 reads a socket until it would block; when the broker closed the
connection right after its last reply, that read brings the reply and the end
together, and the transport drops the reply and reports only "socket disconnected".
A broker refusing a SASL login does exactly that: it answers "Authentication failed"
and hangs up. So a client that reads late (a busy machine: 11 of 12 logins on two
loaded cores) never learns it was refused, retries until its bootstrap timeout, and
wirenews could only say that no broker answered.

``deliver_replies_before_eof`` makes the read return the reply alone and keep the
error for the next read, which the closed socket makes ready at once (a TLS peer
that sends close_notify but keeps the TCP connection open delays it until the TCP
close; Kafka brokers close both at once). Installed when
``pipeline.io.kafka_client`` is imported; remove it once kafka-python passes data read
before an end of stream to its protocol.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kafka.net.transport import KafkaSSLTransport, KafkaTCPTransport

__all__ = ["deliver_replies_before_eof"]

_PENDING = "_wirenews_pending_error"
_Read = Callable[[Any], tuple[bytes, BaseException | None]]


def deliver_replies_before_eof() -> None:
    """Patch kafka-python's TCP and TLS transports (once; later calls do nothing)."""
    for transport in (KafkaTCPTransport, KafkaSSLTransport):
        read = transport.__dict__.get("_sock_recv")  # TLS may one day inherit TCP's
        if read is not None and not getattr(read, "keeps_replies", False):
            transport._sock_recv = _reply_first(read)  # noqa: SLF001


def _reply_first(read: _Read) -> _Read:
    @functools.wraps(read)
    def sock_recv(transport: Any) -> tuple[bytes, BaseException | None]:
        pending = transport.__dict__.pop(_PENDING, None)
        if pending is not None:
            return b"", pending
        data, error = read(transport)
        if data and error is not None:
            setattr(transport, _PENDING, error)
            return data, None
        return data, error

    sock_recv.keeps_replies = True  # type: ignore[attr-defined]
    return sock_recv
