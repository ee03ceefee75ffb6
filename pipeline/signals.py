"""Signal handlers for the length of a ``with`` block, the earlier ones put back after.

Example:
    with handling(stop_requests, (signal.SIGINT, signal.SIGTERM)):
        feed(...)
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterable, Iterator

__all__ = ["handling"]


@contextlib.contextmanager
def handling(
    handler: Callable[..., None], signals: Iterable[signal.Signals], *, even_ignored: bool = False
) -> Iterator[None]:
    """``handler`` for ``signals`` while inside.

    A signal ignored on entry stays ignored (a shell ignores SIGINT for what it starts
    in the background, so that a terminal's Ctrl-C does not reach it) unless
    ``even_ignored``.
    """
    previous = {
        sig: signal.signal(sig, handler)
        for sig in signals
        if even_ignored or signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for sig, earlier in previous.items():
            signal.signal(sig, earlier)
