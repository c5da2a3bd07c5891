"""Multi-thread worker pool: tasks run in threads of this process.

Threads share the GIL, so this pool suits I/O-bound tasks; it is also what
tests and the memory backend use. Heartbeats keep running tasks' results alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from worq._events import logger
from worq.core import Broker
from worq.exceptions import PoolError, TaskFailure
from worq.metrics import PoolMetrics
from worq.models import Envelope, TaskMessage
from worq.pool._leases import LeaseKeeper
from worq.pool._outages import back_off, join_interrupting
from worq.pool._pipeline import TaskPipeline
from worq.pool._services import PoolServices
from worq.runner import EncodedOutcome, close_thread_loop

__all__ = ["Error", "WorkerPool"]


Error = PoolError
"""Raised when the pool is used out of order (started twice, say)."""


class WorkerPool:
    """Runs tasks from ``broker`` in ``workers`` threads.

    Args:
        broker: The broker to take tasks from; its exposed tasks are run.
        workers: Number of worker threads.
        thread_factory: Makes each thread; same signature as ``threading.Thread``.
        scheduler: Fire the broker's schedules (see :meth:`worq.core.Broker.schedule`);
            every pool does by default, and each scheduled time fires once however
            many do.
        metrics_port: Serve Prometheus metrics on this port, at ``/metrics`` (see
            :mod:`worq.metrics`; 0: any free port); None: no metrics.
        metrics_host: The address the metrics are served on.
    """

    def __init__(
        self,
        broker: Broker,
        workers: int = 1,
        thread_factory: Callable[..., threading.Thread] = threading.Thread,
        scheduler: bool = True,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
    ) -> None:
        if type(workers) is not int or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        self.broker = broker
        self.workers = workers
        self.thread_factory = thread_factory
        self.scheduler = scheduler
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.errors: list[BaseException] = []
        """BaseExceptions (SystemExit, say) that tasks raised; each failed its task
        (retried first if it had retries left) and the worker went on."""
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._leases: LeaseKeeper | None = None
        self._pipeline: TaskPipeline | None = None
        self._services: PoolServices | None = None

    def start(self, timeout: float = 1) -> None:
        """Start the worker threads and return.

        Args:
            timeout: Seconds each blocking wait for a task lasts before the
                worker looks again; :meth:`stop` ends an idle wait at once.

        Raises:
            Error: The pool was already started, or a schedule's task is not exposed.
        """
        if self._threads:
            raise Error(f"thread pool on queue {self.broker.name!r} was already started")
        name = f"worq-{self.broker.name}"
        self._services = PoolServices(
            self.broker, "thread", name, self.workers, self._activity,
            scheduler=self.scheduler, metrics_port=self.metrics_port,
            metrics_host=self.metrics_host,
        )  # fmt: skip
        self._services.start()  # first: if it fails, nothing runs
        self._leases = LeaseKeeper(self.broker, name, on_overdue=self._overdue)
        self._pipeline = TaskPipeline(self.broker, self._leases, self._stopping)
        for number in range(self.workers):
            thread = self.thread_factory(
                target=self._work, args=(timeout,), name=f"{name}-worker-{number}"
            )
            thread.daemon = True
            self._threads.append(thread)
            thread.start()
        logger.info(
            "pool.started", queue=self.broker.name, workers=self.workers, pool="thread",
            tasks=self.broker.runner.task_names(),
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
        self.broker.interrupt_waits()
        if join:
            self.join()

    @property
    def metrics(self) -> PoolMetrics | None:
        """The pool's Prometheus metrics while it serves them (``metrics.port``: their port)."""
        return None if self._services is None else self._services.metrics

    def _activity(self) -> tuple[int, list[str]]:
        leases = self._leases
        return (0, []) if leases is None else leases.activity()

    def join(self) -> None:
        """Wait for every worker thread to stop (call ``stop(join=False)`` first)."""
        for thread in self._threads:
            join_interrupting(thread, self.broker)
        if self._services is not None:
            self._services.close()
        if self._leases is not None:
            self._leases.close()
            self._leases = None
            logger.info("pool.stopped", queue=self.broker.name, pool="thread")

    def _next_task(self, timeout: float) -> TaskMessage | None:
        return self.broker.next_task(timeout)

    def _work(self, timeout: float) -> None:
        try:
            self._serve(timeout)
        finally:
            close_thread_loop()  # the loop this thread ran async tasks on, if any

    def _serve(self, timeout: float) -> None:
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
        """Take one task through the pool's pipeline, running it in this thread."""
        pipeline = self._pipeline
        if pipeline is None:  # pragma: no cover - start() made it before any worker ran
            raise Error("thread pool used before start()")
        pipeline.process(task, lambda arguments: self._run_here(task, arguments))

    def _run_here(self, task: TaskMessage, arguments: Mapping[str, bytes]) -> EncodedOutcome:
        runner = self.broker.runner
        outcome = runner.run(task, arguments)
        if outcome.aborted is not None:
            self.errors.append(outcome.aborted)
        return runner.encode(task, outcome.value, outcome.retry_reason)

    def _overdue(self, task: Envelope) -> None:
        """A run passed its time limit: fail the task now; its thread cannot be stopped."""
        limit = task.options.time_limit
        failure = TaskFailure(
            task.name,
            task.queue,
            task.id,
            f"time limit of {limit}s exceeded (the thread pool cannot stop the running "
            "thread: it goes on, and its outcome will be dropped)",
        )
        logger.error("task.time_limit_exceeded", task, time_limit_s=limit)
        self.broker.set_result(task, failure)

    def __repr__(self) -> str:
        state = "running" if self._threads and not self._stopping.is_set() else "idle"
        return f"<thread WorkerPool [{self.broker.name}] workers={self.workers} {state}>"
