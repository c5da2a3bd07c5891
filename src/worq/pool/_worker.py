"""The worker process of the process pool: runs the tasks its pool sends it.

The pool process owns the queue: it takes each task, fetches its arguments,
keeps its heartbeat and stores its outcome, so workers never talk to the
backend (which is how a memory:// queue in the pool's process can feed them).
A worker decodes the message with its own broker (made by the pool's
``init_func``), runs the task and sends back the encoded outcome.

Messages on the pipe, all built from plain str/bytes/dict values:

- pool → worker: ``("run", message_bytes, {arg_id: result_bytes})``, ``("stop",)``
- worker → pool: ``("ready", pid, [exposed task names])``, ``("init_failed", reason)``,
  ``("done", outcome_bytes, retry_reason_or_None)``, ``("undecodable", reason)``
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

from worq._exposed import public_names
from worq._logging import configure_logging_from_environment
from worq.core import Broker
from worq.exceptions import SerializationError

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
        broker = init_func(broker_url, *init_args, **init_kwargs)
        if not isinstance(broker, Broker):
            raise TypeError(f"it returned {broker!r}, not a worq Broker")
    except BaseException as exc:
        conn.send(("init_failed", f"init function {_name(init_func)} failed: {exc!r}"))
        return
    conn.send(("ready", os.getpid(), public_names(broker.tasks)))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] != "run":
            return
        _, data, arguments = request
        conn.send(_run(broker, data, arguments))


def _run(broker: Broker, data: bytes, arguments: Mapping[str, bytes]) -> tuple[Any, ...]:
    try:
        message = broker.codec.decode_message(data)
    except SerializationError as exc:
        return "undecodable", f"worker could not decode the message ({broker.codec.name}): {exc}"
    outcome = broker.execute(message, arguments)
    return "done", broker.encode_outcome(message, outcome.value), outcome.retry_reason


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
