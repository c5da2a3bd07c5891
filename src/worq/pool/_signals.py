"""Stopping on SIGTERM or SIGINT, gracefully, however often the signal comes."""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable

from worq._events import logger

__all__ = ["run_until_stop_signal"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_STOPPED = 0
"""Put on the signal queue when stopping is done (no signal has number 0)."""

_RECHECK = 1.0
"""Longest blocking get on the signal queue: a put from a signal handler that
interrupts the very get waiting for it can go unnoticed until the next wakeup
(seen with two signals in quick succession), so the wait is bounded."""


def _next(signals: queue.SimpleQueue[int]) -> int:
    while True:
        try:
            return signals.get(timeout=_RECHECK)
        except queue.Empty:
            continue


def run_until_stop_signal(name: str, start: Callable[[], None], stop: Callable[[], None]) -> None:
    """``start()``, block until SIGTERM or SIGINT, then ``stop()`` (which may take a while).

    Events: ``pool.stop_requested`` for the first signal; each later one is
    reported as ``pool.already_stopping`` at once and otherwise ignored, so a
    shutdown in progress (running tasks finishing) completes cleanly. The
    handlers only put the signal number on a ``SimpleQueue``, whose ``put``
    is safe in a handler; logging, or setting an Event, inside a handler can
    deadlock on a lock the interrupted code holds. Call from the main thread;
    the previous handlers come back afterwards.

    Raises:
        BaseException: Whatever ``stop()`` raised.
    """
    signals: queue.SimpleQueue[int] = queue.SimpleQueue()
    previous = {
        sig: signal.signal(sig, lambda signum, _: signals.put(signum)) for sig in STOP_SIGNALS
    }
    try:
        start()
        first = _next(signals)
        logger.info("pool.stop_requested", pool=name, signal=signal.Signals(first).name)
        errors: list[BaseException] = []

        def stopping() -> None:
            try:
                stop()
            except BaseException as exc:
                errors.append(exc)
            finally:
                signals.put(_STOPPED)

        threading.Thread(target=stopping, name=f"{name}-stop").start()
        while (received := _next(signals)) != _STOPPED:
            logger.warning("pool.already_stopping", pool=name, signal=signal.Signals(received).name)
        if errors:
            raise errors[0]
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be restored
                signal.signal(sig, handler)
