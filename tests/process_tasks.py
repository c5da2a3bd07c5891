"""Tasks and init functions for process-pool tests; spawned workers import this module."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import redis

from worq import TaskSpace, get_broker
from worq.core import Broker

ts = TaskSpace("proc")


@ts.task
def pid() -> int:
    """The worker's process id."""
    return os.getpid()


@ts.task
def add(values: list[int]) -> int:
    """Sum of the values."""
    return sum(values)


@ts.task
def die(how: str) -> None:
    """End the worker process in the middle of the task."""
    if how == "exit":
        os._exit(7)
    os.kill(os.getpid(), signal.SIGKILL)


@ts.task
def wait_for_key(url: str, key: str, timeout: float) -> str:
    """Block until ``key`` appears in the Redis list (the test's go-ahead)."""
    client = redis.Redis.from_url(url)
    try:
        item = client.blpop([key], timeout=timeout)
    finally:
        client.close()
    return "released" if item is not None else "timed out"


def init(url: str) -> Broker:
    """Worker init: a broker on ``url`` exposing the proc tasks."""
    broker = get_broker(url)
    broker.expose(ts)
    return broker


def fail_once(obj: Any, methods: str | tuple[str, ...], error: Exception, marker: str) -> None:
    """Make the next call of ``obj.method`` (of any of ``methods``) raise ``error``,
    and that call only, creating file ``marker`` then.

    A file, so that a test sees the fault fire in whichever process it was set.
    """
    for method in (methods,) if isinstance(methods, str) else methods:
        _fail_once(obj, method, error, marker)


def _fail_once(obj: Any, method: str, error: Exception, marker: str) -> None:
    original: Callable[..., Any] = getattr(obj, method)

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if not os.path.exists(marker):
            with open(marker, "x"):
                pass
            raise error
        return original(*args, **kwargs)

    setattr(obj, method, flaky)


def init_failing_once(
    url: str, methods: str | tuple[str, ...], error: Exception, marker: str
) -> Broker:
    """Worker init like :func:`init`, its backend's ``methods`` raising ``error`` once."""
    broker = init(url)
    fail_once(broker.taskqueue, methods, error, marker)
    return broker


def init_not_a_broker(url: str) -> object:
    """A broken init function: returns something that is not a Broker."""
    return url


@ts.task
def die_once(marker: str) -> str:
    """Kill the worker the first time (no marker file yet); succeed the next."""
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os._exit(9)
    return "survived"


@ts.task
def hang(url: str, key: str) -> str:
    """Block on a Redis key nobody pushes (the test's time limit ends it)."""
    return wait_for_key(url, key, 3600)


class Interrupted(BaseException):
    """A BaseException of the task's own, neither Exception nor a built-in exit."""


ABORTS: dict[str, type[BaseException]] = {
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": SystemExit,
    "Interrupted": Interrupted,
}


@ts.task
def abort(kind: str, marker: str = "") -> str:
    """Raise the BaseException named ``kind``; with a marker file, only on the first run."""
    if marker and os.path.exists(marker):
        return "ran again"
    if marker:
        with open(marker, "w"):
            pass
    raise ABORTS[kind]("stop" if kind == "SystemExit" else "")


@ts.task
def read_fifo(path: str) -> str:
    """Block until the test writes a line to the named pipe at ``path``; return it."""
    with open(path) as fifo:
        return fifo.readline().strip()


@ts.task
async def async_add(values: list[int]) -> int:
    """Sum of the values, from a coroutine that awaits once."""
    await asyncio.sleep(0)
    return sum(values)


@ts.task
async def where_it_runs() -> list[int]:
    """The process, thread and event loop (its id) the coroutine runs on."""
    return [os.getpid(), threading.get_ident(), id(asyncio.get_running_loop())]
