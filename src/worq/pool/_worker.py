"""The worker process of the process pool: runs the tasks its pool sends it.

The pool process owns the queue: it takes each task, fetches its arguments,
keeps its lease and stores its outcome, so workers never talk to the backend
(which is how a memory:// queue in the pool's process can feed them). The
pool reads only a task's envelope; the worker decodes the payload, once, with
the :class:`~worq.runner.Runner` of the broker the pool's ``init_func``
returned (it keeps nothing else of that broker, whose backend it never
calls), runs the task and sends back the encoded outcome.

Messages on the pipe:

- pool → worker: ``("run", Envelope, payload_bytes, {arg_id: result_bytes})``
  (the envelope carries the run's ``attempt`` and ``lease``), ``("stop",)``
- worker → pool: ``("ready", pid, [exposed task names])``, ``("init_failed", reason)``,
  ``("done", outcome_bytes, retry_reason_or_None)``
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from worq._logging import configure_logging_from_environment
from worq.core import Broker
from worq.runner import Runner

__all__ = ["ORPHANED_EXIT_CODE", "worker_main"]

ORPHANED_EXIT_CODE = 3
"""Exit status of a worker whose pool process vanished."""


def worker_main(
    conn: multiprocessing.connection.Connection,
    init_func: Callable[..., Any],
    broker_url: str,
    init_args: tuple[Any, ...],
    init_kwargs: Mapping[str, Any],
    pool_name: str,
) -> None:
    """Entry point of a worker process (spawned, never forked)."""
    # Ctrl-C and a SIGTERM sent to the whole process group (systemd, docker)
    # are the pool's to handle: it lets running tasks finish. A do-nothing
    # handler, not SIG_IGN, which processes started by tasks would inherit.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _ignore)
    _exit_with_parent()
    configure_logging_from_environment()
    structlog.contextvars.bind_contextvars(pool=pool_name)
    try:
        runner = _make_runner(init_func(broker_url, *init_args, **init_kwargs))
    except BaseException as exc:
        conn.send(("init_failed", f"init function {_name(init_func)} failed: {exc!r}"))
        return
    conn.send(("ready", os.getpid(), runner.task_names()))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] != "run":
            return
        _, envelope, payload, arguments = request
        outcome = runner.run_encoded(envelope, payload, arguments)
        conn.send(("done", outcome.data, outcome.retry_reason))


def _make_runner(broker: object) -> Runner:
    """The Runner of the Broker an init function returned: all a worker process uses."""
    if not isinstance(broker, Broker):
        raise TypeError(f"it returned {broker!r}, not a worq Broker")
    return broker.runner


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
