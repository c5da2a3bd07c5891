"""Multi-process worker pool: tasks run in spawned worker processes.

On a backend other processes reach (Redis), each worker process takes its
own tasks, through the same pipeline as a thread pool's thread (see
:mod:`worq.pool._pipeline`: leases, arguments, recording the outcome), so a
task costs the pool process nothing. The pool process supervises: one thread
per worker watches it, reads which task it runs from the board it shares with
it (:mod:`worq.pool._run_board`) when it dies, and is told by message of the
runs with a time limit; the pool's lease keeper reaps tasks whose lease lapsed
anywhere on the queue.

On memory://, which lives in the pool's process, the pool takes each task
through that pipeline itself, one thread per worker, where running it means
sending its envelope and encoded payload to the worker and waiting for the
encoded outcome it sends back.

Either way a worker that dies in a task (SIGKILL, ``os._exit``, a segfault)
fails that task at once — its waiter gets TaskExpired, not a hang — one that
passes a task's ``time_limit`` is killed and the task failed, and a fresh
worker takes its place. Workers whose pool process dies exit by themselves.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import threading
import time
from collections.abc import Callable, Mapping
from multiprocessing.process import BaseProcess
from typing import Any

import attrs

from worq._checks import is_coroutine_function
from worq._events import logger
from worq.core import Broker
from worq.exceptions import BackendUnavailable, PoolError, TaskFailure
from worq.metrics import Observation, PoolMetrics
from worq.models import Envelope
from worq.pool._leases import LeaseKeeper
from worq.pool._outages import back_off, fail_task, join_interrupting, persist
from worq.pool._pipeline import RunLost, TaskPipeline
from worq.pool._run_board import RunBoard
from worq.pool._services import PoolServices
from worq.pool._signals import run_until_stop_signal
from worq.pool._worker import OwnTasks, worker_main
from worq.runner import EncodedOutcome

__all__ = ["Error", "WorkerPool", "run_in_subprocess", "start_pools"]

Error = PoolError
"""Raised when the pool is used out of order (started twice, say)."""

_spawn = multiprocessing.get_context("spawn")

_TIMED_OUT: tuple[Any, ...] = ("timed out",)
"""What :meth:`_Slot._receive` returns when the worker overran the time limit."""

RETIRE_TIMEOUT = 10.0
"""Seconds a stopping worker gets to exit before it is terminated."""


class WorkerPool:
    """Runs tasks from ``broker`` in ``workers`` spawned processes.

    Args:
        broker: The broker tasks are taken from (in this, the pool process).
        init_func: Called in each worker as ``init_func(broker_url, *init_args,
            **init_kwargs)``; sets the worker up (logging, say) and returns the
            worker's Broker, whose exposed tasks it runs. Must be picklable
            (a module-level function).
        init_args: More positional arguments for ``init_func``.
        init_kwargs: Keyword arguments for ``init_func``.
        workers: Number of worker processes; default: the CPU count.
        max_worker_tasks: Retire a worker after this many tasks and start a
            fresh one (bounds leaks in task code); default: never.
        name: Tells this pool's events from other pools' in one process.
        scheduler: Fire the broker's schedules (see :meth:`worq.core.Broker.schedule`)
            from the pool process; their tasks must be exposed on ``broker``.
            Every pool does by default, and each scheduled time fires once
            however many do.
        metrics_port: Serve Prometheus metrics on this port, at ``/metrics``,
            from the pool process, its workers' runs included (see
            :mod:`worq.metrics`; 0: any free port); None: no metrics.
        metrics_host: The address the metrics are served on.
    """

    def __init__(
        self,
        broker: Broker,
        init_func: Callable[..., Broker],
        init_args: tuple[Any, ...] = (),
        init_kwargs: Mapping[str, Any] | None = None,
        workers: int | None = None,
        max_worker_tasks: int | None = None,
        name: str | None = None,
        scheduler: bool = True,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
    ) -> None:
        if not callable(init_func):
            raise ValueError(f"init_func must be callable, got {init_func!r}")
        if is_coroutine_function(init_func):
            raise ValueError(
                f"init_func {init_func!r} is an async def function: each worker calls it "
                "without an event loop; make it a plain def that returns the broker"
            )
        try:
            pickle.dumps(init_func)
        except Exception as exc:
            raise ValueError(
                f"init_func {init_func!r} cannot be sent to worker processes ({exc}): "
                "use a function defined at module level"
            ) from None
        workers = (os.cpu_count() or 1) if workers is None else workers
        _check_positive("workers", workers)
        if max_worker_tasks is not None:
            _check_positive("max_worker_tasks", max_worker_tasks)
        self.broker = broker
        self.init_func = init_func
        self.init_args = tuple(init_args)
        self.init_kwargs = dict(init_kwargs or {})
        self.workers = workers
        self.max_worker_tasks = max_worker_tasks
        self.name = name or f"worq-{broker.name}"
        self.scheduler = scheduler
        self._services: PoolServices | None = None
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self._slots: list[_Slot] = []
        self._stopping = threading.Event()
        self._leases: LeaseKeeper | None = None

    def start(self, timeout: float = 10, handle_sigterm: bool = True) -> None:
        """Start the workers.

        Args:
            timeout: Seconds each blocking wait for a task lasts before the
                feeder looks again; :meth:`stop` ends an idle wait at once.
            handle_sigterm: Block until SIGTERM or SIGINT, then stop the pool
                (letting running tasks finish) and return; call from the main
                thread. If false, start and return at once.

        Raises:
            Error: The pool was already started.
        """
        if self._slots:
            raise Error(f"process pool {self.name!r} was already started")
        if handle_sigterm:
            run_until_stop_signal(self.name, lambda: self._start(timeout), self.stop)
        else:
            self._start(timeout)

    def _start(self, timeout: float) -> None:
        self._services = PoolServices(
            self.broker, "process", self.name, self.workers, self._activity,
            scheduler=self.scheduler, metrics_port=self.metrics_port,
            metrics_host=self.metrics_host,
        )  # fmt: skip
        self._services.start()  # first: if it fails, nothing runs
        self._leases = LeaseKeeper(self.broker, self.name)
        # memory:// lives in this process: only here can its tasks be taken.
        kind = _FeedingSlot if self.broker.backend_kind == "memory" else _OwnTasksSlot
        self._slots = [kind(self, number, timeout) for number in range(self.workers)]
        for slot in self._slots:
            slot.thread.start()
        logger.info("pool.started", pool=self.name, queue=self.broker.name, workers=self.workers)

    def stop(self, join: bool = True) -> None:
        """Stop taking tasks; workers finish their current task, then exit.

        Args:
            join: Wait until every worker has exited.
        """
        self._stopping.set()
        self.broker.interrupt_waits()  # idle feeders stop waiting for a task now
        for slot in self._slots:
            slot.ask_to_stop()
        if join:
            self.join()

    def join(self) -> None:
        """Wait for the pool to stop (call after ``stop(join=False)``)."""
        for slot in self._slots:
            join_interrupting(slot.thread, self.broker)
        if self._services is not None:
            self._services.close()
        if self._leases is not None:
            self._leases.close()
            self._leases = None
            logger.info("pool.stopped", pool=self.name, queue=self.broker.name)

    @property
    def metrics(self) -> PoolMetrics | None:
        """The pool's Prometheus metrics while it serves them (``metrics.port``: their port)."""
        return None if self._services is None else self._services.metrics

    def _count(self, observed: list[Observation]) -> None:
        """Count what a worker observed (the pool's metrics and per-minute stats)."""
        if self._services is not None:
            self._services.count(observed)

    def _activity(self) -> tuple[int, list[str]]:
        """Runs finished and tasks running: the pool's own (memory://, which it feeds
        its workers from) and those its workers take themselves (Redis)."""
        done, running = self._leases.activity() if self._leases is not None else (0, [])
        for slot in self._slots:
            if isinstance(slot, _OwnTasksSlot):
                done += slot.total_done
                current = slot.running_task()
                if current is not None:
                    running.append(current)
        return done, running

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [pid for slot in self._slots if (pid := slot.pid()) is not None]

    def __repr__(self) -> str:
        return f"<process WorkerPool {self.name!r} [{self.broker.name}] workers={self.workers}>"


class _Slot:
    """One worker process and the thread in the pool process that looks after it.

    The two kinds differ in who takes the tasks (see :mod:`worq.pool._worker`):
    :class:`_OwnTasksSlot` only watches a worker that takes its own, while
    :class:`_FeedingSlot` takes each task and sends it to its worker.
    """

    def __init__(self, pool: WorkerPool, number: int, timeout: float) -> None:
        self.pool = pool
        self.timeout = timeout
        self.process: BaseProcess | None = None
        self.conn: multiprocessing.connection.Connection | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"{pool.name}-slot-{number}", daemon=True
        )

    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and process.is_alive() else None

    def _run(self) -> None:
        raise NotImplementedError

    def ask_to_stop(self) -> None:
        """Called by :meth:`WorkerPool.stop`, in its thread, after the pool's stop is set."""

    def _own_tasks(self) -> OwnTasks | None:
        """What a worker taking its own tasks is told; None for a fed worker."""
        return None

    def _spawn(self) -> bool:
        pool = self.pool
        parent_conn, child_conn = _spawn.Pipe()
        process = _spawn.Process(
            target=worker_main,
            args=(child_conn, pool.init_func, pool.broker.url, pool.init_args,
                  pool.init_kwargs, pool.name, self._own_tasks()),
            name=f"{pool.name}-worker",
            daemon=True,
        )  # fmt: skip
        try:
            process.start()
        except Exception as exc:  # e.g. the main module cannot be re-imported
            logger.error("worker.init_failed", pool=pool.name, error=repr(exc))
            parent_conn.close()
            child_conn.close()
            pool._stopping.wait(1.0)  # do not spin on a start that always fails
            return False
        child_conn.close()
        reply = self._receive(parent_conn, process)
        if reply is None or reply[0] != "ready":
            reason = reply[1] if reply is not None else f"exit code {process.exitcode}"
            logger.error("worker.init_failed", pool=pool.name, pid=process.pid, error=reason)
            process.join(RETIRE_TIMEOUT)
            parent_conn.close()
            pool._stopping.wait(1.0)  # do not spin on an init function that always fails
            return False
        self.process, self.conn = process, parent_conn
        logger.info("worker.started", pool=pool.name, pid=process.pid, tasks=reply[2])
        return True

    def _overran(self, task: Envelope, process: BaseProcess) -> EncodedOutcome:
        """Kill a worker whose task passed its time limit; the task failed, and may retry."""
        limit = task.options.time_limit
        process.kill()
        process.join(RETIRE_TIMEOUT)
        reason = f"time limit of {limit}s exceeded: worker process {process.pid} was killed"
        logger.error("task.time_limit_exceeded", task, time_limit_s=limit)
        self._forget_worker()
        failure = TaskFailure(task.name, task.queue, task.id, reason)
        return self.pool.broker.runner.encode(task, failure, reason)

    def _died_running(self, task: Envelope, process: BaseProcess) -> str:
        """Log a worker that died in ``task`` and forget it; the reason, for the task."""
        process.join(RETIRE_TIMEOUT)
        reason = f"worker process {process.pid} died (exit code {process.exitcode}) running it"
        logger.error("worker.crashed", task, pool=self.pool.name, error=reason)
        self._forget_worker()
        return reason

    @staticmethod
    def _receive(
        conn: multiprocessing.connection.Connection,
        process: BaseProcess,
        timeout: float | None = None,
    ) -> tuple[Any, ...] | None:
        """The worker's next message; None once it died; ``_TIMED_OUT`` after ``timeout``."""
        ready = multiprocessing.connection.wait([conn, process.sentinel], timeout)
        if not ready:
            return _TIMED_OUT
        if conn in ready:
            try:
                reply: tuple[Any, ...] = conn.recv()
                return reply
            except (EOFError, OSError):
                return None
        return None

    def _retire(self, reason: str) -> None:
        """Ask the worker to exit, then make sure it did."""
        process, conn = self.process, self.conn
        if process is None or conn is None:
            return
        with contextlib.suppress(OSError):  # already gone
            conn.send(("stop",))
        process.join(RETIRE_TIMEOUT)
        if process.is_alive():
            process.kill()  # workers ignore SIGTERM: it is their pool's to handle
            process.join(RETIRE_TIMEOUT)
        logger.info("worker.retired", pool=self.pool.name, pid=process.pid, reason=reason)
        self._forget_worker()

    def _forget_worker(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.process is not None:
            self.process.join(RETIRE_TIMEOUT)
            self.process.close()
        self.process, self.conn = None, None


@attrs.define
class _Run:
    """The task a worker said it started, and when (monotonic seconds)."""

    task: Envelope
    started: float


class _OwnTasksSlot(_Slot):
    """Watches a worker that takes its own tasks from the backend.

    The worker posts the task it runs on its board and counts its runs
    there; it sends a message before and after a run with a time limit. This
    thread waits for those messages or the worker's death, so a worker that
    dies in a task has that task retried or expired at once, one that passes
    the task's ``time_limit`` is killed and the task failed, and either is
    replaced. On stop the worker is told to finish its task and exit.
    """

    def __init__(self, pool: WorkerPool, number: int, timeout: float) -> None:
        super().__init__(pool, number, timeout)
        self._stop_lock = threading.RLock()
        """Held while a worker starts, so that a stop cannot slip in unseen."""
        self._running: _Run | None = None
        """The run the worker announced (one with a time limit), whose clock this thread watches."""
        self._board = RunBoard.allocate(_spawn, pool.broker.name)
        self._done_before = 0
        """Runs finished by the workers this slot had before its current one."""
        self._counting = threading.Lock()
        """Held while a worker's runs move from its board to ``_done_before``."""

    @property
    def total_done(self) -> int:
        """Runs its workers finished, this one and those it replaced."""
        with self._counting:
            return self._done_before + self._board.read().done

    def running_task(self) -> str | None:
        """The id of the task its worker runs now, if any."""
        return None if self.process is None else self._board.read().task_id

    def _own_tasks(self) -> OwnTasks:
        pool = self.pool
        return OwnTasks(
            pool.broker.name, pool.broker.initial_lease, self.timeout, pool.max_worker_tasks,
            self._board.shared,
        )  # fmt: skip

    def ask_to_stop(self) -> None:
        with self._stop_lock, contextlib.suppress(OSError):  # a worker gone needs no telling
            if self.conn is not None:
                self.conn.send(("stop",))

    def _run(self) -> None:
        pool = self.pool
        while True:
            if self.process is None:
                if pool._stopping.is_set():
                    return
                with self._stop_lock:
                    spawned = self._spawn()
                    if spawned and pool._stopping.is_set():  # stop came while it started
                        self.ask_to_stop()
                continue
            self._watch(self.process)

    def _watch(self, process: BaseProcess) -> None:
        """Wait for the worker's next message, its death or its task's time limit."""
        conn, running = self.conn, self._running
        if conn is None:  # pragma: no cover - set together with process
            raise AssertionError("a worker without its pipe")
        timeout = None
        if running is not None and running.task.options.time_limit is not None:
            passed = time.monotonic() - running.started
            timeout = max(0.0, running.task.options.time_limit - passed)
        reply = self._receive(conn, process, timeout)
        if reply is _TIMED_OUT and running is not None:
            self._running = None
            ended = self._overran(running.task, process)
            record = functools.partial(self.pool.broker.record, running.task, ended)
            try:
                persist(record, self.pool.broker, self.pool._stopping)
            except BackendUnavailable as exc:  # stopping: its lease lapses, a reaper settles it
                logger.error("task.outcome_unrecorded", running.task, error=str(exc))
        elif reply is None:
            self._running = None
            posted = self._board.read(settled=True)
            task = running.task if running is not None else posted.task
            if task is not None:
                reason = self._died_running(task, process)
                fail_task(self.pool.broker, task, reason, self.pool._stopping)
            else:
                self._exited(process, posted.done)
        elif reply[0] == "started":
            self.pool._count(reply[2])
            self._running = _Run(reply[1], time.monotonic())
        elif reply[0] == "finished":
            self.pool._count(reply[1])
            self._running = None
        elif reply[0] == "observed":
            self.pool._count(reply[1])

    def _forget_worker(self) -> None:
        with self._counting:
            self._done_before += self._board.read(settled=True).done
            self._board.clear()
        super()._forget_worker()

    def _exited(self, process: BaseProcess, done: int) -> None:
        """A worker exited between tasks: asked to stop, at max_worker_tasks, or it died."""
        process.join(RETIRE_TIMEOUT)
        limit = self.pool.max_worker_tasks
        if self.pool._stopping.is_set():
            reason = "pool stopping"
        elif limit is not None and done >= limit:
            reason = f"max_worker_tasks={limit} reached"
        else:
            reason = f"exited between tasks (exit code {process.exitcode})"
        logger.info("worker.retired", pool=self.pool.name, pid=process.pid, reason=reason)
        self._forget_worker()


class _FeedingSlot(_Slot):
    """Takes each task for its worker and sends it over (memory://, see the module)."""

    def __init__(self, pool: WorkerPool, number: int, timeout: float) -> None:
        super().__init__(pool, number, timeout)
        leases = pool._leases
        if leases is None:  # pragma: no cover - the pool makes its slots after its leases
            raise AssertionError("slot made before the pool's lease keeper")
        self.pipeline = TaskPipeline(
            pool.broker, leases, pool._stopping, on_pool_error=lambda: self._retire("pool error")
        )
        self.tasks_done = 0
        """Runs its current worker finished."""

    def _run(self) -> None:
        pool, failures = self.pool, 0
        try:
            while not pool._stopping.is_set():
                try:
                    if not self._ensure_worker():
                        continue
                    taken = pool.broker.take(self.timeout)
                    if failures:
                        logger.info("backend.available", queue=pool.broker.name, pool=pool.name)
                    failures = 0
                except Exception as exc:  # an outage, or a reply nobody expected: try again
                    back_off(pool.broker, failures, exc, pool._stopping)
                    failures += 1
                    continue
                if taken is not None:
                    task, payload = taken
                    self.pipeline.process(
                        task, functools.partial(self._run_in_worker, task, payload)
                    )
        finally:
            self._retire("pool stopping")

    def _ensure_worker(self) -> bool:
        """A live worker is ready (starting one if needed); False if it failed to start."""
        if self.process is not None and self.process.is_alive():
            if self.pool.max_worker_tasks is None or self.tasks_done < self.pool.max_worker_tasks:
                return True
            self._retire(f"max_worker_tasks={self.pool.max_worker_tasks} reached")
        elif self.process is not None:
            self._forget_worker()
        self.tasks_done = 0
        return self._spawn()

    def _run_in_worker(
        self, task: Envelope, payload: bytes, arguments: Mapping[str, bytes]
    ) -> EncodedOutcome | RunLost:
        """Send the task to the worker; its encoded outcome, or why there is none."""
        process, conn = self.process, self.conn
        if process is None or conn is None:  # pragma: no cover - _ensure_worker ran first
            raise AssertionError("no worker to run the task")
        with contextlib.suppress(OSError):  # died idle: _receive sees its exit
            conn.send(("run", task, payload, arguments))
        reply = self._receive(conn, process, task.options.time_limit)
        if reply is _TIMED_OUT:
            return self._overran(task, process)
        if reply is None:
            return RunLost(self._died_running(task, process))
        self.tasks_done += 1
        _, outcome, observed = reply
        self.pool._count(observed)
        return outcome  # type: ignore[no-any-return]  # the pipe carries objects untyped


def _check_positive(name: str, value: object) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def start_pools(*pools: WorkerPool, **start_kwargs: Any) -> None:
    """Start pools, block until SIGTERM or SIGINT, then stop them all.

    Call from the main thread. ``start_kwargs`` go to each pool's ``start``
    (``handle_sigterm`` is always false there: this function handles signals).
    """
    start_kwargs["handle_sigterm"] = False

    def start() -> None:
        started: list[WorkerPool] = []
        try:
            for pool in pools:
                pool.start(**start_kwargs)
                started.append(pool)
        except BaseException:
            for pool in started:  # do not leave the ones already running behind
                pool.stop()
            raise

    def stop() -> None:
        for pool in pools:
            pool.stop(join=False)
        for pool in pools:
            pool.join()

    run_until_stop_signal(",".join(pool.name for pool in pools), start, stop)


def run_in_subprocess(_func: Callable[..., Any], *args: Any, **kw: Any) -> BaseProcess:
    """Call ``_func(*args, **kw)`` in a spawned process and return it (started).

    The arguments must be picklable. The returned process has ``pid``,
    ``is_alive()``, ``join(timeout)`` and ``terminate()``.
    """
    process = _spawn.Process(target=_func, args=args, kwargs=kw, daemon=False)
    process.start()
    return process
