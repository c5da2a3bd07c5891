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


@contextmanager
def stop_signals(name: str) -> Iterator[threading.Event]:
    """Within the block, SIGTERM and SIGINT set the yielded event instead of killing.

    A signal arriving after the first is logged (``pool.signal_repeated``) and
    otherwise ignored, so a shutdown in progress finishes cleanly. Must run in
    the main thread; the previous handlers come back when the block ends.
    """
    received = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        name_of = signal.Signals(signum).name
        if received.is_set():
            logger.warning("pool.signal_repeated", pool=name, signal=name_of)
            return
        logger.info("pool.signal", pool=name, signal=name_of)
        received.set()

    previous = {sig: signal.signal(sig, handle) for sig in _SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
