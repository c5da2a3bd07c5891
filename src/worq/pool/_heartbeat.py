"""Heartbeats for running tasks, shared by the worker pools.

While a task runs, its result placeholder must be kept alive; otherwise a
waiter would see the task expire. One thread per pool beats for every task
that pool is running, each at its own ``heartrate``.
"""

from __future__ import annotations

import math
import threading
import time

from worq._events import logger, task_fields
from worq._models import TaskMessage
from worq.core import Broker
from worq.exceptions import WorqError

__all__ = ["Heartbeat"]

_MAX_NAP = 1.0
"""Longest the heartbeat thread waits before looking at the running tasks again."""


class Heartbeat:
    """Beats for every registered task until :meth:`close`."""

    def __init__(self, broker: Broker, name: str) -> None:
        self._broker = broker
        self._changed = threading.Condition()
        self._due: dict[str, tuple[TaskMessage, float]] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"{name}-heartbeat", daemon=True)
        self._thread.start()

    def add(self, task: TaskMessage) -> None:
        """Start beating for ``task``.

        The first beat comes after one ``heartrate``, or sooner if the backend's
        initial placeholder timeout would lapse first, so a task never looks
        expired while it runs; short tasks finish before any beat is sent.
        """
        first = min(task.options.heartrate, self._broker.taskqueue.initial_result_timeout / 2)
        with self._changed:
            self._due[task.id] = (task, time.monotonic() + first)
            self._changed.notify()

    def remove(self, task: TaskMessage) -> None:
        """Stop beating for ``task``."""
        with self._changed:
            self._due.pop(task.id, None)

    def close(self) -> None:
        """Stop the heartbeat thread and wait for it."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                due = self._take_due()
                while not due and not self._closed:
                    self._changed.wait(self._nap())
                    due = self._take_due()
                if self._closed:
                    return
            for task in due:
                try:
                    self._broker.heartbeat(task)
                except WorqError as exc:
                    logger.warning("task.heartbeat_failed", **task_fields(task), error=str(exc))

    def _take_due(self) -> list[TaskMessage]:
        """The tasks whose beat is due, each rescheduled one heartrate later."""
        now = time.monotonic()
        due = [task for task, when in self._due.values() if when <= now]
        for task in due:
            self._due[task.id] = (task, now + task.options.heartrate)
        return due

    def _nap(self) -> float:
        upcoming = min((when for _, when in self._due.values()), default=math.inf)
        return max(0.0, min(_MAX_NAP, upcoming - time.monotonic()))
