"""Stopping on SIGTERM or SIGINT, gracefully, however often the signal comes."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from worq._events import logger

__all__ = ["stop_signals"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest(threading.Event):
    """Set by the first stop signal; remembers every signal received."""

    def __init__(self) -> None:
        super().__init__()
        self.signals: list[str] = []

    def wait_and_report(self, name: str) -> None:
        """Block until a stop signal arrives, then log it (event ``pool.signal``)."""
        self.wait()
        logger.info("pool.signal", pool=name, signal=self.signals[0])


@contextmanager
def stop_signals(name: str) -> Iterator[StopRequest]:
    """Within the block, SIGTERM and SIGINT set the yielded event instead of killing.

    Signals after the first are ignored, so a shutdown in progress finishes
    cleanly, and reported (``pool.signal_repeated``) when the block ends. The
    handler only records: logging (or any locking) inside a signal handler can
    deadlock on a lock the interrupted code holds. Must run in the main thread; the previous
    handlers come back when the block ends.
    """
    request = StopRequest()

    def handle(signum: int, frame: FrameType | None) -> None:
        # Only the first signal sets the event: a second one can interrupt this
        # handler inside Event.set(), whose lock is not re-entrant.
        first = not request.signals
        request.signals.append(signal.Signals(signum).name)
        if first:
            request.set()

    previous = {sig: signal.signal(sig, handle) for sig in _SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if len(request.signals) > 1:
            logger.warning("pool.signal_repeated", pool=name, signals=request.signals[1:])
