"""Building dead letters: the one record shape for everything refused.

Example:
    letter = make_dead_letter(payload, origin, stage="parse", error=exc, failed_at=now)
"""

from __future__ import annotations

from datetime import datetime

from transforms.records import DeadLetter, Origin

__all__ = ["MAX_DEAD_LETTER_PAYLOAD", "make_dead_letter"]

# A refused record keeps its bytes so it can be fixed and replayed; past this
# size (records over --max-record-bytes) only a prefix is kept, to bound memory.
MAX_DEAD_LETTER_PAYLOAD = 64 * 1024


def make_dead_letter(
    payload: bytes,
    origin: Origin,
    *,
    stage: str,
    error: BaseException,
    failed_at: datetime,
    payload_size: int | None = None,
    max_payload: int | None = None,
) -> DeadLetter:
    """A dead letter for ``payload`` refused at ``stage`` because of ``error``.

    ``payload_size`` is the full size when ``payload`` is already a prefix; the
    payload is cut to ``max_payload`` bytes when given (oversized records).
    """
    kept = payload if max_payload is None else payload[:max_payload]
    return DeadLetter(
        origin=origin,
        stage=stage,
        error_type=type(error).__name__,
        error_message=str(error) or type(error).__name__,
        payload=kept,
        payload_size=len(payload) if payload_size is None else payload_size,
        failed_at=failed_at,
    )
