"""asyncio worker pool: one process, one event loop, many tasks at once.

For I/O-bound work written as ``async def`` tasks (HTTP calls, database
queries): up to ``concurrency`` tasks run at once on one event loop in a
thread of this process. A sync task runs in a bounded thread executor, so it
never blocks the loop.

The backend calls (taking a task, fetching its arguments, recording its
outcome) are the other pools' own, through :class:`~worq.pool._pipeline.TaskPipeline`,
made in threads so that the loop never waits on the backend: one thread
takes a task whenever a slot is free, another records outcomes, each taking
the next task with it when one is waiting (see :class:`_Loop`). Heartbeats,
retries, reaping and the events are those of the other pools too. A
coroutine past its ``time_limit`` is cancelled and its task fails saying so
(it may retry). A step of a coroutine that holds the loop longer than
``blocked_loop_after`` seconds is reported as ``task.blocked_loop``, naming
the task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import math
import queue
import threading
import time
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from worq._events import logger
from worq.core import Broker
from worq.exceptions import PoolError
from worq.metrics import PoolMetrics
from worq.models import TaskMessage
from worq.pool._leases import LeaseKeeper
from worq.pool._outages import back_off, describe, join_interrupting
from worq.pool._pipeline import RunLost, TaskPipeline
from worq.pool._services import PoolServices
from worq.runner import EncodedOutcome

__all__ = ["ARGUMENT_THREADS", "Error", "WorkerPool"]

Error = PoolError
"""Raised when the pool is used out of order (started twice, say)."""

ARGUMENT_THREADS = 4
"""Most threads fetching the Deferred arguments of tasks about to run.

One thread takes tasks and one records outcomes: more recorders made each
task cost more, every thread waking for the GIL (futex calls were 25 per
task with four; alternating runs, one session: 404-474 -> 334-408 us of
worker CPU per task, with one)."""


class WorkerPool:
    """Runs up to ``concurrency`` tasks from ``broker`` at once on one event loop.

    Args:
        broker: The broker to take tasks from; its exposed tasks are run.
        concurrency: Most tasks running at once, async and sync together.
        threads: Size of the thread executor running sync tasks (default:
            ``concurrency``, at most 32); a sync task waits for a free thread.
        blocked_loop_after: Seconds a coroutine may hold the loop in one step
            (between two awaits) before ``task.blocked_loop`` reports it.
        scheduler: Fire the broker's schedules (see :meth:`worq.core.Broker.schedule`);
            every pool does by default, and each scheduled time fires once however
            many do.
        metrics_port: Serve Prometheus metrics on this port, at ``/metrics`` (see
            :mod:`worq.metrics`; 0: any free port); None: no metrics.
        metrics_host: The address the metrics are served on.

    Raises:
        ValueError: A bad ``concurrency``, ``threads`` or ``blocked_loop_after``.
    """

    def __init__(
        self,
        broker: Broker,
        concurrency: int = 100,
        threads: int | None = None,
        blocked_loop_after: float = 0.1,
        scheduler: bool = True,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
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
        self.scheduler = scheduler
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.errors: list[BaseException] = []
        """BaseExceptions (SystemExit, say) that tasks raised; each failed its task
        (retried first if it had retries left) and the pool went on."""
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._leases: LeaseKeeper | None = None
        self._pipeline: TaskPipeline | None = None
        self._crashed: list[BaseException] = []
        self._services: PoolServices | None = None

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
        self._services = PoolServices(
            self.broker, "asyncio", name, self.concurrency, self._activity,
            scheduler=self.scheduler, metrics_port=self.metrics_port,
            metrics_host=self.metrics_host,
        )  # fmt: skip
        self._services.start()  # first: if it fails, nothing runs
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

    @property
    def metrics(self) -> PoolMetrics | None:
        """The pool's Prometheus metrics while it serves them (``metrics.port``: their port)."""
        return None if self._services is None else self._services.metrics

    def _activity(self) -> tuple[int, list[str]]:
        leases = self._leases
        return (0, []) if leases is None else leases.activity()

    def join(self) -> None:
        """Wait for the loop to end (call ``stop(join=False)`` first).

        Raises:
            Error: The loop itself crashed (never a task's error: those fail their task).
        """
        if self._thread is not None:
            join_interrupting(self._thread, self.broker)
        if self._services is not None:
            self._services.close()
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


class _Slots:
    """The pool's ``concurrency`` slots: one is held from a task's take until its
    outcome is recorded (a task taken with that outcome inherits it)."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._held = 0
        self._changed = threading.Condition()

    def acquire(self, timeout: float) -> bool:
        with self._changed:
            if not self._changed.wait_for(lambda: self._held < self._count, timeout):
                return False
            self._held += 1
            return True

    def release(self) -> None:
        with self._changed:
            self._held -= 1
            self._changed.notify_all()

    def wait_all_free(self) -> None:
        """Block until no slot is held: every task taken has its outcome recorded."""
        with self._changed:
            self._changed.wait_for(lambda: self._held == 0)


class _Loop:
    """What runs the pool: a taker thread, the event loop, and a recorder thread.

    The taker thread takes a task whenever one of the ``concurrency`` slots
    is free and hands it to the loop; the loop runs it; the recorder thread
    records its outcome, taking the next task in the same call when one is
    waiting (it inherits the slot), else frees the slot. So a task crosses
    threads twice, and the loop never waits on the backend (a task with
    Deferred arguments fetches them in a backend thread). Stopping, the
    taker stops, the recorder stops taking, and the pool ends once every
    slot is free: each task it took has its outcome recorded.
    """

    def __init__(self, pool: WorkerPool, timeout: float) -> None:
        if pool._pipeline is None:  # pragma: no cover - start() made it first
            raise Error("asyncio pool used before start()")
        self._pool = pool
        self._broker = pool.broker
        self._pipeline = pool._pipeline
        self._timeout = timeout
        self._name = f"worq-{pool.broker.name}"
        self._slots = _Slots(pool.concurrency)
        self._ended: queue.SimpleQueue[tuple[TaskMessage, EncodedOutcome | RunLost] | None] = (
            queue.SimpleQueue()
        )
        self._arguments = concurrent.futures.ThreadPoolExecutor(
            ARGUMENT_THREADS, f"{self._name}-arguments"
        )
        self._sync = concurrent.futures.ThreadPoolExecutor(pool.threads, f"{self._name}-sync")

    async def serve(self) -> None:
        """Run tasks until the pool stops and the taker is done; then drain."""
        loop = asyncio.get_running_loop()
        running: set[asyncio.Task[None]] = set()
        taken_all = loop.create_future()

        def start(task: TaskMessage) -> None:
            run = loop.create_task(self._run(task), name=f"worq-task-{task.id}")
            running.add(run)
            run.add_done_callback(running.discard)

        def hand_over(task: TaskMessage) -> None:
            loop.call_soon_threadsafe(start, task)

        def take() -> None:
            try:
                self._take(hand_over)
            finally:
                loop.call_soon_threadsafe(taken_all.set_result, None)

        recorder = threading.Thread(
            target=self._record, args=(hand_over,), name=f"{self._name}-recorder", daemon=True
        )
        recorder.start()
        taker = threading.Thread(target=take, name=f"{self._name}-taker", daemon=True)
        taker.start()
        try:
            await taken_all
            await asyncio.to_thread(self._slots.wait_all_free)  # the running tasks end
        finally:
            self._ended.put(None)
            await asyncio.to_thread(_join_all, [taker, recorder])
            for executor in (self._arguments, self._sync):
                executor.shutdown(wait=True)

    def _take(self, hand_over: Callable[[TaskMessage], object]) -> None:
        """The taker thread: take a task for each free slot until the pool stops."""
        broker, stopping, slots = self._broker, self._pool._stopping, self._slots
        failures = 0
        while not stopping.is_set():
            if not slots.acquire(timeout=self._timeout):
                continue
            try:
                task = broker.next_task(self._timeout)
            except Exception as exc:  # an outage, or a reply nobody expected: try again
                slots.release()
                back_off(broker, failures, exc, stopping)
                failures += 1
                continue
            if failures:
                logger.info("backend.available", queue=broker.name)
                failures = 0
            if task is None:
                slots.release()
            else:
                hand_over(task)

    def _record(self, hand_over: Callable[[TaskMessage], object]) -> None:
        """The recorder thread: record each run's outcome (the pipeline's last step).

        While the pool runs, the next task is taken in the same backend call
        (``TaskPipeline.finish(..., take_next=True)``: one round trip per task
        when the queue is busy) and gets the slot; else the slot is freed.
        """
        broker, stopping = self._broker, self._pool._stopping
        while (ended := self._ended.get()) is not None:
            task, outcome = ended
            taken = self._pipeline.finish(task, outcome, take_next=not stopping.is_set())
            try:
                following = None if taken is None else broker.decode_taken(*taken)
            except Exception as exc:  # failing an undecodable task failed too
                logger.error(
                    "task.outcome_unrecorded", task_id=taken[0].id if taken else None,
                    queue=broker.name, error=describe(exc), exc_info=exc,
                )  # fmt: skip
                following = None  # its lease lapses, and a reaper settles it
            if following is None:
                self._slots.release()
            else:
                hand_over(following)

    async def _run(self, task: TaskMessage) -> None:
        """One task's run on this loop, between the pipeline's first and last steps."""
        pipeline, runner = self._pipeline, self._broker.runner
        if task.refs:  # its arguments come from the backend
            arguments = await asyncio.get_running_loop().run_in_executor(
                self._arguments, pipeline.begin, task
            )
        else:
            arguments = pipeline.begin(task)  # no backend call: only its lease is kept
        if arguments is None:
            self._slots.release()
            return
        ended: EncodedOutcome | RunLost
        try:
            outcome = await runner.run_async(
                task, arguments, self._run_sync, functools.partial(self._watch, task)
            )
            if outcome.aborted is not None:
                self._pool.errors.append(outcome.aborted)
            ended = runner.encode(task, outcome.value, outcome.retry_reason)
        except Exception as exc:
            ended = pipeline.pool_failed(task, exc)
        self._ended.put((task, ended))

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


def _join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


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
