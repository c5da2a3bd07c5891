"""One task's way through a worker pool, from taken to recorded.

Both pools hand every task they take to :meth:`TaskPipeline.process`, which
does, in this order and in this one place:

1. keep the task's lease (the pool's :class:`~worq.pool._leases.LeaseKeeper`),
   from before the first backend call, so an outage cannot lapse it;
2. fetch the results handed to it as arguments, riding out backend outages;
3. run it, which is the pool's own part: the thread pool calls its Runner in
   the thread, the process pool sends the task to a worker process;
4. record the outcome (``Broker.record_outcome``: retry or store), riding out
   outages, or, when the run ended without one (its worker died), retry or
   expire the task (``Broker.task_failed``);
5. whatever goes wrong in the pool's own steps fails that one task with the
   reason, and the pool goes on serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import attrs

from worq._events import logger
from worq.core import Broker
from worq.exceptions import BackendUnavailable
from worq.models import Envelope
from worq.pool._leases import LeaseKeeper
from worq.pool._outages import describe, fail_task, persist
from worq.runner import EncodedOutcome

__all__ = ["RunLost", "TaskPipeline"]


@attrs.frozen
class RunLost:
    """A run that ended without an outcome: its worker process died in it.

    Attributes:
        reason: Why, for the retry's event or the TaskExpired its waiter gets.
    """

    reason: str


Run = Callable[[Mapping[str, bytes]], EncodedOutcome | RunLost]
"""A pool's way of running one task, given the encoded results handed to it."""


class TaskPipeline:
    """Takes each task of one pool from taken to recorded (see the module docstring).

    Args:
        broker: The pool's broker, which talks to the backend.
        leases: The pool's lease keeper.
        stopping: Set when the pool stops: outages are then no longer waited out.
        on_pool_error: Called when one of the pool's own steps failed a task
            (the process pool replaces its worker, whose state is then unknown).
        next_task_wait: Seconds a take with an outcome (``take_next``) waits
            for a task when none is runnable; 0 for none. Only for a caller
            with nothing else to do meanwhile (a process pool's worker).
    """

    def __init__(
        self,
        broker: Broker,
        leases: LeaseKeeper,
        stopping: threading.Event,
        on_pool_error: Callable[[], None] | None = None,
        next_task_wait: float = 0.0,
    ) -> None:
        self._broker = broker
        self._leases = leases
        self._stopping = stopping
        self._on_pool_error = on_pool_error
        self._next_task_wait = next_task_wait

    def process(
        self, task: Envelope, run: Run, take_next: bool = False
    ) -> tuple[Envelope, bytes] | None:
        """Run one task with ``run`` and record how it ended; never raises an Exception.

        Args:
            task: The task, as taken.
            run: The pool's way of running it.
            take_next: Take the next task with the outcome, in the same backend
                call (``Broker.record_outcome_and_take``); the caller then
                holds its lease and must process it.

        Returns:
            With ``take_next``, the next task if one was runnable; else None.
        """
        arguments = self.begin(task)
        if arguments is None:
            return None
        try:
            ended = run(arguments)
        except Exception as exc:
            ended = self.pool_failed(task, exc)
        return self.finish(task, ended, take_next)

    def begin(self, task: Envelope) -> Mapping[str, bytes] | None:
        """Steps 1 and 2: keep the task's lease, fetch its arguments; never raises an Exception.

        A pool that runs the task itself between :meth:`begin` and
        :meth:`finish` (the asyncio pool, on its event loop) calls them apart.

        Returns:
            The encoded results handed to the task; None when they could not
            be fetched, the task then being handled (do not run it).
        """
        broker = self._broker
        self._leases.add(task)
        try:
            return persist(lambda: broker.get_arguments(task), broker, self._stopping)
        except BackendUnavailable as exc:  # stopping: the lease lapses, a reaper settles it
            logger.error("task.arguments_unavailable", task, error=str(exc))
        except Exception as exc:
            fail_task(broker, task, self.pool_failed(task, exc).reason, self._stopping)
        self._leases.remove(task)
        return None

    def finish(
        self, task: Envelope, ended: EncodedOutcome | RunLost, take_next: bool = False
    ) -> tuple[Envelope, bytes] | None:
        """Step 4: record how a run begun with :meth:`begin` ended; never raises an Exception.

        Returns:
            With ``take_next``, the next task if one was runnable; else None.
        """
        broker, stopping = self._broker, self._stopping
        try:
            if isinstance(ended, RunLost):
                fail_task(broker, task, ended.reason, stopping)
            elif take_next:
                return persist(
                    lambda: broker.record_outcome_and_take(task, ended, self._next_task_wait),
                    broker,
                    stopping,
                )
            else:
                persist(
                    lambda: broker.record(task, ended),
                    broker,
                    stopping,
                )
        except BackendUnavailable as exc:  # the backend is down and the pool is stopping
            logger.error("task.outcome_unrecorded", task, error=str(exc))
        except Exception as exc:
            fail_task(broker, task, self.pool_failed(task, exc).reason, stopping)
        finally:
            self._leases.remove(task)
        return None

    def pool_failed(self, task: Envelope, exc: Exception) -> RunLost:
        """Step 5: one of the pool's own steps failed the task; log it and say why."""
        reason = f"the pool failed to handle it: {describe(exc)}"
        logger.error("task.pool_error", task, error=reason, exc_info=exc)
        if self._on_pool_error is not None:
            self._on_pool_error()
        return RunLost(reason)
