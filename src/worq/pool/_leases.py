"""Keeping a pool's leases: renewing them, watching time limits, reaping lapsed ones.

While a task runs its lease must be renewed, or the task would be reclaimed
as lost. One thread per pool renews the lease of every task the pool runs,
each at its own ``heartrate``; tells the pool when a run passes its
``time_limit``; and, every few seconds, reaps tasks whose lease lapsed
anywhere on the queue (their pool vanished), so that they are retried or
expired even if nobody waits. All three are about one question, whether a
leased task is still looked after, so they share one thread and one clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import attrs

from worq._events import logger
from worq.core import Broker
from worq.exceptions import WorqError
from worq.models import Envelope
from worq.pool._outages import describe

__all__ = ["LeaseKeeper"]

_MAX_NAP = 1.0
"""Longest the thread waits before looking at the running tasks again."""

REAP_EVERY = (0.05, 5.0)
"""Bounds of the reaping interval, which is a quarter of the backend's initial lease."""


@attrs.define
class _Running:
    task: Envelope
    next_beat: float
    overdue_at: float


class LeaseKeeper:
    """Keeps the leases of the tasks it is told about, until :meth:`close`.

    Args:
        broker: The pool's broker.
        name: The pool's name (for the thread's name).
        on_overdue: Called once, in this thread, for a task whose run passed
            its ``time_limit``; None when the pool enforces limits itself.
        reaps: Also reap lapsed leases on the queue. A process pool's worker
            process that takes its own tasks keeps only their leases: its pool
            process reaps, once for all its workers.
    """

    def __init__(
        self,
        broker: Broker,
        name: str,
        on_overdue: Callable[[Envelope], None] | None = None,
        reaps: bool = True,
    ) -> None:
        self._broker = broker
        self._on_overdue = on_overdue
        self._changed = threading.Condition()
        self._running: dict[tuple[str, str], _Running] = {}
        """Keyed by (task id, lease), never by id alone: an old run of a task and
        its retry may overlap in one pool, and each keeps its own lease."""
        self._closed = False
        self._done = 0
        self._wakes_at = -math.inf
        """When the thread next looks at the running tasks (monotonic); -inf while it acts."""
        lease = broker.initial_lease
        self._reap_every = min(max(lease / 4, REAP_EVERY[0]), REAP_EVERY[1])
        self._next_reap = time.monotonic() + self._reap_every if reaps else math.inf
        self._thread = threading.Thread(target=self._run, name=f"{name}-leases", daemon=True)
        self._thread.start()

    def add(self, task: Envelope) -> None:
        """Start keeping ``task``'s lease.

        The first beat comes after one ``heartrate``, or sooner if the initial
        lease would lapse first; tasks shorter than that send no beat at all.
        """
        now = time.monotonic()
        first = min(task.options.heartrate, self._broker.initial_lease / 2)
        limit = task.options.time_limit
        overdue = math.inf if limit is None or self._on_overdue is None else now + limit
        running = _Running(task, now + first, overdue)
        with self._changed:
            self._running[task.id, task.lease] = running
            if min(running.next_beat, running.overdue_at) < self._wakes_at:
                self._changed.notify()  # else the thread wakes in time: no wake-up per task

    def remove(self, task: Envelope) -> None:
        """Stop keeping ``task``'s lease: its run is over."""
        with self._changed:
            if self._running.pop((task.id, task.lease), None) is not None:
                self._done += 1

    def activity(self) -> tuple[int, list[str]]:
        """How many runs ended since the keeper started, and the ids of those going on."""
        with self._changed:
            return self._done, [task_id for task_id, _ in self._running]

    def close(self) -> None:
        """Stop the thread and wait for it."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._closed:
                    return
                now = time.monotonic()
                beats, overdue, reap = self._due(now)
                if not (beats or overdue or reap):
                    nap = self._nap(now)
                    self._wakes_at = now + nap
                    self._changed.wait(nap)
                    self._wakes_at = -math.inf
                    continue
            self._act(beats, overdue, reap)

    def _due(self, now: float) -> tuple[list[Envelope], list[Envelope], bool]:
        """What to do now; reschedules what it hands out."""
        beats, overdue = [], []
        for running in self._running.values():
            if running.next_beat <= now:
                beats.append(running.task)
                running.next_beat = now + running.task.options.heartrate
            if running.overdue_at <= now:
                overdue.append(running.task)
                running.overdue_at = running.next_beat = math.inf  # settled: no more beats
        reap = self._next_reap <= now
        if reap:
            self._next_reap = now + self._reap_every
        return beats, overdue, reap

    def _nap(self, now: float) -> float:
        times = [self._next_reap]
        for running in self._running.values():
            times += [running.next_beat, running.overdue_at]
        return max(0.0, min(_MAX_NAP, min(times) - now))

    def _act(self, beats: list[Envelope], overdue: list[Envelope], reap: bool) -> None:
        """Beat, enforce limits and reap; no error of one step stops the thread."""
        for task in beats:
            try:
                self._broker.renew_lease(task)
            except Exception as exc:  # the next beat may go through: keep every lease going
                logger.warning(
                    "task.heartbeat_failed", task, error=describe(exc),
                    exc_info=not isinstance(exc, WorqError),
                )  # fmt: skip
        for task in overdue:
            if self._on_overdue is not None:
                try:
                    self._on_overdue(task)
                except Exception as exc:  # its lease still lapses: a reaper settles it
                    logger.error(
                        "task.outcome_unrecorded", task, error=describe(exc),
                        exc_info=True,
                    )  # fmt: skip
        if reap:
            try:
                self._broker.reap()
            except Exception as exc:  # the next sweep tries again
                logger.warning(
                    "pool.reap_failed", queue=self._broker.name, error=describe(exc),
                    exc_info=not isinstance(exc, WorqError),
                )  # fmt: skip
