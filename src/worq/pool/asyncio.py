"""asyncio worker pool: one process, one event loop, many tasks at once.

For I/O-bound work written as ``async def`` tasks (HTTP calls, database
queries): up to ``concurrency`` tasks run at once on one event loop in a
thread of this process. A sync task runs in a bounded thread executor, so it
never blocks the loop.

The backend calls (taking a task, fetching its arguments, recording its
outcome) are the other pools' own, through :class:`~worq.pool._pipeline.TaskPipeline`,
made in a few backend threads; heartbeats, time limits, retries, reaping and
the events are those of the other pools too. A coroutine past its
``time_limit`` is cancelled and its task fails saying so (it may retry).
A step of a coroutine that holds the loop longer than ``blocked_loop_after``
seconds is reported as ``task.blocked_loop``, naming the task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import math
import threading
import time
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from worq._events import logger
from worq.core import Broker
from worq.exceptions import PoolError
from worq.models import TaskMessage
from worq.pool._leases import LeaseKeeper
from worq.pool._outages import back_off, join_interrupting
from worq.pool._pipeline import RunLost, TaskPipeline
from worq.runner import EncodedOutcome

__all__ = ["BACKEND_THREADS", "Error", "WorkerPool"]

Error = PoolError
"""Raised when the pool is used out of order (started twice, say)."""

BACKEND_THREADS = 4
"""Threads making the backend calls of running tasks (arguments, outcomes);
one more thread takes tasks."""


class WorkerPool:
    """Runs up to ``concurrency`` tasks from ``broker`` at once on one event loop.

    Args:
        broker: The broker to take tasks from; its exposed tasks are run.
        concurrency: Most tasks running at once, async and sync together.
        threads: Size of the thread executor running sync tasks (default:
            ``concurrency``, at most 32); a sync task waits for a free thread.
        blocked_loop_after: Seconds a coroutine may hold the loop in one step
            (between two awaits) before ``task.blocked_loop`` reports it.

    Raises:
        ValueError: A bad ``concurrency``, ``threads`` or ``blocked_loop_after``.
    """

    def __init__(
        self,
        broker: Broker,
        concurrency: int = 100,
        threads: int | None = None,
        blocked_loop_after: float = 0.1,
    ) -> None:
        if type(concurrency) is not int or concurrency < 1:
            raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
        if threads is not None and (type(threads) is not int or threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        if type(blocked_loop_after) not in (int, float) or not 0 < blocked_loop_after < math.inf:
            raise ValueError(
                f"blocked_loop_after must be a number of seconds above 0, got "
                f"{blocked_loop_after!r}"
            )
        self.broker = broker
        self.concurrency = concurrency
        self.threads = threads if threads is not None else min(concurrency, 32)
        self.blocked_loop_after = float(blocked_loop_after)
        self.errors: list[BaseException] = []
        """BaseExceptions (SystemExit, say) that tasks raised; each failed its task
        (retried first if it had retries left) and the pool went on."""
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._leases: LeaseKeeper | None = None
        self._pipeline: TaskPipeline | None = None
        self._crashed: list[BaseException] = []

    def start(self, timeout: float = 1) -> None:
        """Start the pool's event loop, in a thread of its own, and return.

        Args:
            timeout: Seconds each blocking wait for a task lasts before the
                pool looks again; :meth:`stop` ends an idle wait at once.

        Raises:
            Error: The pool was already started.
        """
        if self._thread is not None:
            raise Error(f"asyncio pool on queue {self.broker.name!r} was already started")
        name = f"worq-{self.broker.name}"
        self._leases = LeaseKeeper(self.broker, name)
        self._pipeline = TaskPipeline(self.broker, self._leases, self._stopping)
        self._thread = threading.Thread(
            target=self._serve, args=(timeout,), name=f"{name}-loop", daemon=True
        )
        self._thread.start()
        logger.info(
            "pool.started", queue=self.broker.name, workers=self.concurrency, pool="asyncio",
            concurrency=self.concurrency, threads=self.threads,
            tasks=self.broker.runner.task_names(),
        )  # fmt: skip

    def stop(self, use_sentinel: bool = False, join: bool = True) -> None:
        """Stop taking tasks; the running ones finish (a drain), then the loop ends.

        Args:
            use_sentinel: Accepted for WorQ 1.1 pools' signature; changes nothing.
            join: Wait for the running tasks to finish and the loop to end.
        """
        self._stopping.set()
        self.broker.interrupt_waits()
        if join:
            self.join()

    def join(self) -> None:
        """Wait for the loop to end (call ``stop(join=False)`` first).

        Raises:
            Error: The loop itself crashed (never a task's error: those fail their task).
        """
        if self._thread is not None:
            join_interrupting(self._thread, self.broker)
        if self._leases is not None:
            self._leases.close()
            self._leases = None
            logger.info("pool.stopped", queue=self.broker.name, pool="asyncio")
        if self._crashed:
            raise Error(
                f"asyncio pool on queue {self.broker.name!r} crashed: {self._crashed[0]!r}"
            ) from self._crashed[0]

    def _serve(self, timeout: float) -> None:
        try:
            asyncio.run(_Loop(self, timeout).serve())
        except BaseException as exc:  # the loop machinery itself failed: join() says so
            logger.error("pool.crashed", queue=self.broker.name, pool="asyncio", exc_info=exc)
            self._crashed.append(exc)

    def __repr__(self) -> str:
        running = self._thread is not None and not self._stopping.is_set()
        state = "running" if running else "idle"
        return f"<asyncio WorkerPool [{self.broker.name}] concurrency={self.concurrency} {state}>"


class _Loop:
    """What runs on the pool's event loop: taking tasks, and each task's run."""

    def __init__(self, pool: WorkerPool, timeout: float) -> None:
        if pool._pipeline is None:  # pragma: no cover - start() made it first
            raise Error("asyncio pool used before start()")
        self._pool = pool
        self._broker = pool.broker
        self._pipeline = pool._pipeline
        self._timeout = timeout
        name = f"worq-{pool.broker.name}"
        self._taker = concurrent.futures.ThreadPoolExecutor(1, f"{name}-taker")
        self._backend = concurrent.futures.ThreadPoolExecutor(BACKEND_THREADS, f"{name}-backend")
        self._sync = concurrent.futures.ThreadPoolExecutor(pool.threads, f"{name}-sync")

    async def serve(self) -> None:
        """Take tasks while free slots remain, until the pool stops; then drain."""
        loop = asyncio.get_running_loop()
        stopping = self._pool._stopping
        slots = asyncio.Semaphore(self._pool.concurrency)
        running: set[asyncio.Task[None]] = set()

        def done(run: asyncio.Task[None]) -> None:
            running.discard(run)
            slots.release()

        failures = 0
        try:
            while not stopping.is_set():
                await slots.acquire()
                try:
                    task = await loop.run_in_executor(
                        self._taker, self._broker.next_task, self._timeout
                    )
                except Exception as exc:  # an outage, or a reply nobody expected: try again
                    slots.release()
                    await loop.run_in_executor(
                        self._taker, back_off, self._broker, failures, exc, stopping
                    )
                    failures += 1
                    continue
                if failures:
                    logger.info("backend.available", queue=self._broker.name)
                    failures = 0
                if task is None:
                    slots.release()
                    continue
                run = asyncio.create_task(self._process(task), name=f"worq-task-{task.id}")
                running.add(run)
                run.add_done_callback(done)
            if running:
                await asyncio.wait(running)
        finally:
            for executor in (self._taker, self._backend, self._sync):
                executor.shutdown(wait=True)

    async def _process(self, task: TaskMessage) -> None:
        """One task through the pool's pipeline, its run on this loop."""
        loop = asyncio.get_running_loop()
        pipeline, runner = self._pipeline, self._broker.runner
        arguments = await loop.run_in_executor(self._backend, pipeline.begin, task)
        if arguments is None:
            return
        ended: EncodedOutcome | RunLost
        try:
            outcome = await runner.run_async(
                task, arguments, self._run_sync, functools.partial(self._watch, task)
            )
            if outcome.aborted is not None:
                self._pool.errors.append(outcome.aborted)
            ended = EncodedOutcome(runner.encode_outcome(task, outcome.value), outcome.retry_reason)
        except Exception as exc:
            ended = pipeline.pool_failed(task, exc)
        await loop.run_in_executor(self._backend, pipeline.finish, task, ended)

    async def _run_sync(self, call: Callable[[], Any]) -> Any:
        """A sync task's call, in the executor of sync tasks."""
        return await asyncio.get_running_loop().run_in_executor(self._sync, call)

    def _watch(self, task: TaskMessage, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """``coroutine``, each of its steps timed: a long one is reported as blocking the loop."""
        threshold = self._pool.blocked_loop_after

        def step_took(seconds: float) -> None:
            if seconds > threshold:
                logger.warning(
                    "task.blocked_loop", task, duration_s=round(seconds, 6),
                    threshold_s=threshold,
                )  # fmt: skip

        return _timed_steps(coroutine, step_took)


@types.coroutine
def _timed_steps(
    coroutine: Coroutine[Any, Any, Any], step_took: Callable[[float], None]
) -> Generator[Any, Any, Any]:
    """Drive ``coroutine`` as its Task would, timing each step it runs on the loop.

    Every step (from resuming the coroutine until it awaits again or ends)
    is the time it holds the loop; ``step_took`` gets each duration. What
    the coroutine awaits, and what the loop sends or throws back into it
    (results, cancellation), passes through unchanged.
    """
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        started = time.perf_counter()
        try:
            awaited = coroutine.send(sent) if thrown is None else coroutine.throw(thrown)
        except StopIteration as stop:
            step_took(time.perf_counter() - started)
            return stop.value
        except BaseException:
            step_took(time.perf_counter() - started)
            raise
        step_took(time.perf_counter() - started)
        try:
            sent, thrown = (yield awaited), None
        except BaseException as exc:  # cancellation, or an error thrown in by the loop
            sent, thrown = None, exc
