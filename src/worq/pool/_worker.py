"""The worker process of the process pool, in one of two modes.

**Taking its own tasks** (a backend other processes reach, Redis): the
worker takes each task from the backend itself, through the same
:class:`~worq.pool._pipeline.TaskPipeline` as a thread pool's thread, and
keeps the leases of what it runs. Every task then costs the pool process
nothing: before a run the worker posts the task on its
:class:`~worq.pool._run_board.RunBoard` (shared memory), after it that the
run ended, so that the pool can fail or retry at once the task of a worker
that dies in it, and replace it. A task with a ``time_limit`` (or too big
for the board) is also announced by a message before its run and after it,
so that the pool watches its clock and kills a worker that overruns it. The
broker it works with is the one ``init_func`` returned when that one is on
the pool's queue, else one made for that queue running the same tasks
(:meth:`~worq.core.Broker.serving`).

**Fed by its pool** (memory://, which lives in the pool's process): the pool
takes each task, fetches its arguments, keeps its lease and stores its
outcome; the worker keeps only the :class:`~worq.runner.Runner` of the broker
``init_func`` returned, decodes the payload, runs the task and sends back the
encoded outcome.

Messages on the pipe:

- worker → pool, both modes: ``("ready", pid, [exposed task names])``,
  ``("init_failed", reason)``
- pool → worker, fed: ``("run", Envelope, payload_bytes, {arg_id: result_bytes})``
  (the envelope carries the run's ``attempt`` and ``lease``), ``("stop",)``;
  worker → pool, fed: ``("done", EncodedOutcome, observed)``
- pool → worker, taking: ``("stop",)``; worker → pool, taking:
  ``("started", Envelope, observed)`` and ``("finished", observed)`` around the
  run of a task the pool must watch (see above), ``("observed", observed)``
  otherwise, at most every :data:`OBSERVED_EVERY` seconds while busy and
  before each wait for a task

``observed`` lists what the worker counted for its pool's metrics and per-minute
stats since its last message (see :mod:`worq._observations`).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import structlog

from worq._events import logger
from worq._logging import configure_logging_from_environment
from worq._observations import Observation, observation
from worq.core import Broker
from worq.models import Envelope
from worq.pool._leases import LeaseKeeper
from worq.pool._outages import back_off
from worq.pool._pipeline import TaskPipeline
from worq.pool._run_board import RunBoard
from worq.runner import Runner, close_thread_loop

__all__ = ["NEXT_TASK_WAIT", "OBSERVED_EVERY", "ORPHANED_EXIT_CODE", "OwnTasks", "worker_main"]

ORPHANED_EXIT_CODE = 3
"""Exit status of a worker whose pool process vanished."""

OBSERVED_EVERY = 0.2
"""Seconds a busy worker keeps its observations before it sends them to its pool,
whose heartbeat passes them on every few seconds anyway. A worker killed while
busy loses at most this long's counts (metrics only: its tasks are settled)."""

NEXT_TASK_WAIT = 0.005
"""Seconds a worker that just recorded an outcome waits, in that same round trip,
for its next task when none is runnable yet.

Under a steady trickle of tasks (a client sending one at a time) the queue is
empty whenever a worker finishes, and each task used to cost that worker an
empty take, its report to the pool that it is idle, and a blocking wait of
its own: three round trips and a wake-up of the pool process instead of one
(docs/performance.md has the measurements). The wait is spent after the
outcome is stored, so no waiter hears of it later."""


@attrs.frozen
class OwnTasks:
    """What a worker that takes its own tasks needs of its pool.

    Attributes:
        queue: The pool's queue name.
        initial_lease: The pool's backend's initial lease, in seconds.
        timeout: Seconds each blocking wait for a task lasts (the pool's
            ``start(timeout=...)``); a stop ends the wait at once anyway.
        max_tasks: Exit after this many tasks (``max_worker_tasks``), or None.
        board: The shared memory of the worker's :class:`RunBoard`.
    """

    queue: str
    initial_lease: float
    timeout: float
    max_tasks: int | None
    board: Any


def worker_main(
    conn: multiprocessing.connection.Connection,
    init_func: Callable[..., Any],
    broker_url: str,
    init_args: tuple[Any, ...],
    init_kwargs: Mapping[str, Any],
    pool_name: str,
    own_tasks: OwnTasks | None = None,
) -> None:
    """Entry point of a worker process (spawned, never forked).

    With ``own_tasks`` the worker takes its own tasks from ``broker_url``;
    without, its pool sends it each one. It counts its runs for its pool's
    metrics and per-minute stats.
    """
    # Ctrl-C and a SIGTERM sent to the whole process group (systemd, docker)
    # are the pool's to handle: it lets running tasks finish. A do-nothing
    # handler, not SIG_IGN, which processes started by tasks would inherit.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _ignore)
    _exit_with_parent()
    configure_logging_from_environment()
    structlog.contextvars.bind_contextvars(pool=pool_name)
    try:
        broker = _broker(init_func(broker_url, *init_args, **init_kwargs))
        if own_tasks is not None:
            broker = broker.serving(broker_url, own_tasks.queue, own_tasks.initial_lease)
    except BaseException as exc:
        conn.send(("init_failed", f"init function {_name(init_func)} failed: {exc!r}"))
        return
    conn.send(("ready", os.getpid(), broker.runner.task_names()))
    observed = _Observed()
    logger.observers.append(observed.keep)
    try:
        if own_tasks is not None:
            _take_own_tasks(conn, broker, own_tasks, pool_name, observed)
        else:
            _run_fed_tasks(conn, broker.runner, observed)
    finally:
        close_thread_loop()  # the loop this worker ran async tasks on, if any


class _Observed:
    """What a worker counted for its pool's metrics, until sent with its next message."""

    def __init__(self) -> None:
        self._kept: list[Observation] = []
        self._sent = time.monotonic()

    def keep(self, event: str, task: Envelope, fields: dict[str, Any]) -> None:
        seen = observation(event, task, fields)
        if seen is not None:
            self._kept.append(seen)

    def drain(self) -> list[Observation]:
        kept, self._kept = self._kept, []
        self._sent = time.monotonic()
        return kept

    def send(self, conn: multiprocessing.connection.Connection, busy: bool) -> None:
        """Send what was kept, if anything; while ``busy`` only every OBSERVED_EVERY seconds."""
        if self._kept and (not busy or time.monotonic() - self._sent >= OBSERVED_EVERY):
            conn.send(("observed", self.drain()))


def _run_fed_tasks(
    conn: multiprocessing.connection.Connection, runner: Runner, observed: _Observed
) -> None:
    """Run the tasks the pool process sends, until it sends something else or goes."""
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] != "run":
            return
        _, envelope, payload, arguments = request
        outcome = runner.run_encoded(envelope, payload, arguments)
        conn.send(("done", outcome, observed.drain()))


def _broker(returned: object) -> Broker:
    """The Broker an init function returned, checked."""
    if not isinstance(returned, Broker):
        raise TypeError(f"it returned {returned!r}, not a worq Broker")
    return returned


def _take_own_tasks(
    conn: multiprocessing.connection.Connection,
    broker: Broker,
    own: OwnTasks,
    pool_name: str,
    observed: _Observed,
) -> None:
    """Take, run and record tasks until the pool says stop (or ``max_tasks`` ran).

    Each run is posted on the worker's board before it starts and marked
    ended once its outcome is recorded (see the module for the runs also
    announced by message); the next task comes with that outcome when one is
    runnable or sent within :data:`NEXT_TASK_WAIT` (one round trip for both).
    Only this thread sends on the pipe; a listener thread waits for the
    pool's stop, which ends a wait for a task at once.
    """
    stopping = threading.Event()

    def listen() -> None:
        # ("stop",), the only message the pool sends in this mode; or an
        # error: the pool is gone, and _exit_with_parent ends this process.
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
        stopping.set()
        broker.interrupt_waits()

    threading.Thread(target=listen, name="worq-stop-listener", daemon=True).start()
    leases = LeaseKeeper(broker, pool_name, reaps=False)
    pipeline = TaskPipeline(broker, leases, stopping, next_task_wait=NEXT_TASK_WAIT)
    board = RunBoard(own.board, own.queue)
    runner, done, failures = broker.runner, 0, 0
    taken: tuple[Envelope, bytes] | None = None

    def more() -> bool:
        return not stopping.is_set() and (own.max_tasks is None or done < own.max_tasks)

    try:
        # A task taken with the last outcome is this worker's (it holds the
        # lease): it runs even when a stop came meanwhile.
        while taken is not None or more():
            if taken is None:
                observed.send(conn, busy=False)  # the pool's counts are current while idle
                try:
                    taken = broker.take(own.timeout)
                except Exception as exc:  # an outage, or a reply nobody expected: try again
                    back_off(broker, failures, exc, stopping)
                    failures += 1
                    continue
                if failures:
                    logger.info("backend.available", queue=broker.name, pool=pool_name)
                failures = 0
                if taken is None:
                    continue
            task, payload = taken
            announced = not board.post(task) or task.options.time_limit is not None
            if announced:
                conn.send(("started", task, observed.drain()))
            done += 1
            run = functools.partial(runner.run_encoded, task, payload)
            taken = pipeline.process(task, run, take_next=more())
            board.finish()
            if announced:
                conn.send(("finished", observed.drain()))
            else:
                observed.send(conn, busy=True)
    finally:
        leases.close()
        with contextlib.suppress(OSError):  # the pool is gone: nobody to tell
            observed.send(conn, busy=False)


def _ignore(signum: int, frame: object) -> None:
    """Receive a stop signal and do nothing: the pool decides when workers stop."""


def _exit_with_parent() -> None:
    """Exit at once when the pool process dies, even in the middle of a task."""
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - always set in a spawned child
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(ORPHANED_EXIT_CODE)

    threading.Thread(target=watch, name="worq-parent-watch", daemon=True).start()


def _name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
