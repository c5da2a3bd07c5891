"""Multi-thread worker pool: tasks run in threads of this process.

Threads share the GIL, so this pool suits I/O-bound tasks; it is also what
tests and the memory backend use. Heartbeats keep running tasks' results alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from worq._events import logger, task_fields
from worq._exposed import public_names
from worq._models import TaskMessage
from worq.core import Broker
from worq.exceptions import BackendUnavailable, PoolError, TaskFailure
from worq.pool._heartbeat import Heartbeat
from worq.pool._outages import (
    back_off,
    describe,
    fail_task,
    finish_outcome,
    join_interrupting,
    persist,
)

__all__ = ["Error", "WorkerPool"]


Error = PoolError
"""Raised when the pool is used out of order (started twice, say)."""


class WorkerPool:
    """Runs tasks from ``broker`` in ``workers`` threads.

    Args:
        broker: The broker to take tasks from; its exposed tasks are run.
        workers: Number of worker threads.
        thread_factory: Makes each thread; same signature as ``threading.Thread``.
    """

    def __init__(
        self,
        broker: Broker,
        workers: int = 1,
        thread_factory: Callable[..., threading.Thread] = threading.Thread,
    ) -> None:
        if type(workers) is not int or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        self.broker = broker
        self.workers = workers
        self.thread_factory = thread_factory
        self.errors: list[BaseException] = []
        """BaseExceptions (SystemExit, say) that tasks raised; each failed its task
        (retried first if it had retries left) and the worker went on."""
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._heartbeat: Heartbeat | None = None

    def start(self, timeout: float = 1) -> None:
        """Start the worker threads and return.

        Args:
            timeout: Seconds each blocking wait for a task lasts before the
                worker looks again; :meth:`stop` ends an idle wait at once.

        Raises:
            Error: The pool was already started.
        """
        if self._threads:
            raise Error(f"thread pool on queue {self.broker.name!r} was already started")
        name = f"worq-{self.broker.name}"
        self._heartbeat = Heartbeat(self.broker, name, on_overdue=self._overdue)
        for number in range(self.workers):
            thread = self.thread_factory(
                target=self._work, args=(timeout,), name=f"{name}-worker-{number}"
            )
            thread.daemon = True
            self._threads.append(thread)
            thread.start()
        logger.info(
            "pool.started", queue=self.broker.name, workers=self.workers, pool="thread",
            tasks=public_names(self.broker.tasks),
        )  # fmt: skip

    def stop(self, use_sentinel: bool = False, join: bool = True) -> None:
        """Ask the workers to stop after their current task.

        Idle workers stop waiting for a task at once (see
        ``TaskQueue.interrupt_waits``), whatever their ``timeout``.

        Args:
            use_sentinel: Accepted for WorQ 1.1, whose pools woke idle workers
                with a no-op task per worker; the interrupted wait does that
                now, without leaving tasks in the queue, so it changes nothing.
            join: Wait for the threads to finish.
        """
        self._stopping.set()
        self.broker.taskqueue.interrupt_waits()
        if join:
            self.join()

    def join(self) -> None:
        """Wait for every worker thread to stop (call ``stop(join=False)`` first)."""
        for thread in self._threads:
            join_interrupting(thread, self.broker)
        if self._heartbeat is not None:
            self._heartbeat.close()
            self._heartbeat = None
            logger.info("pool.stopped", queue=self.broker.name, pool="thread")

    def _next_task(self, timeout: float) -> TaskMessage | None:
        return self.broker.next_task(timeout)

    def _work(self, timeout: float) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                task = self._next_task(timeout)
            except Exception as exc:  # an outage, or a reply nobody expected: try again
                back_off(self.broker, failures, exc, self._stopping)
                failures += 1
                continue
            if failures:
                logger.info("backend.available", queue=self.broker.name)
                failures = 0
            if task is not None:
                self._run(task)

    def _run(self, task: TaskMessage) -> None:
        """Run one task and store its outcome; the thread survives whatever happens.

        An error from the pool's own steps (a backend call, an option the
        backend refuses) fails that one task with the reason, then the thread
        goes on serving.
        """
        heartbeat = self._heartbeat
        if heartbeat is not None:
            heartbeat.add(task)
        try:
            arguments = persist(
                lambda: self.broker.get_arguments(task), self.broker, self._stopping
            )
            outcome = self.broker.execute(task, arguments)
            if outcome.aborted is not None:
                self.errors.append(outcome.aborted)
            data = self.broker.encode_outcome(task, outcome.value)
            finish_outcome(self.broker, task, data, outcome.retry_reason, self._stopping)
        except BackendUnavailable as exc:  # the backend is down and the pool is stopping
            logger.error("task.outcome_unrecorded", **task_fields(task), error=str(exc))
        except Exception as exc:
            reason = f"the pool failed to handle it: {describe(exc)}"
            logger.error("task.pool_error", **task_fields(task), error=reason, exc_info=True)
            fail_task(self.broker, task, reason, self._stopping)
        finally:
            if heartbeat is not None:
                heartbeat.remove(task)

    def _overdue(self, task: TaskMessage) -> None:
        """A run passed its time limit: fail the task now; its thread cannot be stopped."""
        limit = task.options.time_limit
        failure = TaskFailure(
            task.name,
            task.queue,
            task.id,
            f"time limit of {limit}s exceeded (the thread pool cannot stop the running "
            "thread: it goes on, and its outcome will be dropped)",
        )
        logger.error("task.time_limit_exceeded", **task_fields(task), time_limit_s=limit)
        self.broker.set_result(task, failure)

    def __repr__(self) -> str:
        state = "running" if self._threads and not self._stopping.is_set() else "idle"
        return f"<thread WorkerPool [{self.broker.name}] workers={self.workers} {state}>"
