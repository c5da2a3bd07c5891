"""Riding out backend outages in a worker pool: back off, then try again.

A pool must not lose a finished task's outcome because the backend blinked,
nor spin while it is down: each failure in a row waits a little longer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from worq._events import logger
from worq.core import Broker
from worq.exceptions import BackendUnavailable, WorqError
from worq.models import Envelope

__all__ = ["back_off", "describe", "fail_task", "join_interrupting", "persist"]

INTERRUPT_EVERY = 0.05
"""Seconds between the interrupts a stopping pool sends while a thread is still up."""

T = TypeVar("T")

BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0)
"""Seconds to wait after the 1st, 2nd, … failure in a row (the last one repeats)."""


def describe(exc: BaseException) -> str:
    """An error for the logs: worq's own messages as they are, others with their type."""
    return str(exc) if isinstance(exc, WorqError) else f"{type(exc).__name__}: {exc}"


def back_off(broker: Broker, failures: int, exc: Exception, stopping: threading.Event) -> None:
    """Log a failure to take a task and wait (less if the pool starts stopping).

    Any exception, not only a backend error: a pool thread must outlive
    whatever a backend call raises, and try again.
    """
    delay = BACKOFF[min(failures, len(BACKOFF) - 1)]
    event = "backend.unavailable" if isinstance(exc, BackendUnavailable) else "backend.error"
    logger.warning(
        event, queue=broker.name, error=describe(exc), retry_in_s=delay,
        exc_info=not isinstance(exc, WorqError),
    )  # fmt: skip
    stopping.wait(delay)


def persist(step: Callable[[], T], broker: Broker, stopping: threading.Event) -> T:
    """Run a backend step until it goes through, waiting out outages until stopping.

    Returns:
        What the step returned.

    Raises:
        BackendUnavailable: The backend is down and the pool is stopping.
    """
    failures = 0
    while True:
        try:
            return step()
        except BackendUnavailable as exc:
            if stopping.is_set():
                raise
            back_off(broker, failures, exc, stopping)
            failures += 1


def fail_task(broker: Broker, task: Envelope, reason: str, stopping: threading.Event) -> None:
    """Retry or expire a task whose run ended without an outcome; never raises.

    What is left when even that fails (the backend is down and the pool is
    stopping, or the backend refuses) is logged: the task's lease then lapses
    and a reaper settles it.
    """
    try:
        persist(lambda: broker.task_failed(task, reason), broker, stopping)
    except Exception as exc:
        logger.error(
            "task.outcome_unrecorded", task, error=describe(exc),
            exc_info=not isinstance(exc, WorqError),
        )  # fmt: skip


def join_interrupting(thread: threading.Thread, broker: Broker) -> None:
    """Wait for a stopping pool's thread, interrupting its wait for a task meanwhile.

    Repeated, not once: a thread that saw the pool still running just before
    ``stop`` may only now start a wait, which the first interrupt missed. A
    busy thread finishes its task first; the interrupts only end waits.
    """
    while thread.is_alive():
        broker.interrupt_waits()
        thread.join(INTERRUPT_EVERY)
