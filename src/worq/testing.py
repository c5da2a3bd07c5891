"""Helpers for testing code that uses worq (and for worq's own tests).

These are the helpers WorQ 1.1's examples import from ``worq.tests.util``:
run a worker in a thread for the length of a ``with`` block, wait for a value
to appear, and step a worker in lock-step with the test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from worq.core import Broker
from worq.models import TaskMessage
from worq.pool.thread import WorkerPool

__all__ = [
    "WAIT",
    "RedisServer",
    "TimeoutLock",
    "assert_raises",
    "eq_",
    "eventually",
    "free_port",
    "thread_worker",
]

WAIT = 10.0
"""Seconds tests wait for a result before failing."""


class TimeoutLock:
    """A lock any thread may release, whose acquisition gives up after a timeout.

    Args:
        locked: Start in the locked state.
    """

    def __init__(self, locked: bool = False) -> None:
        self._lock = threading.Lock()
        if locked:
            self._lock.acquire()

    def acquire(self, timeout: float = 10) -> bool:
        """Take the lock, waiting up to ``timeout`` seconds; False if that ran out."""
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        """Release the lock (from any thread)."""
        self._lock.release()

    def locked(self) -> bool:
        """True while the lock is held."""
        return self._lock.locked()


class _GatedPool(WorkerPool):
    """A one-thread pool that takes each task only after acquiring ``gate``."""

    def __init__(self, broker: Broker, gate: TimeoutLock) -> None:
        super().__init__(broker, workers=1)
        self._gate = gate
        self._permit = False

    def _next_task(self, timeout: float) -> TaskMessage | None:
        if not self._permit:
            if not self._gate.acquire(timeout):
                return None
            self._permit = True
        task = super()._next_task(timeout)
        if task is not None:
            self._permit = False
        return task


@contextmanager
def thread_worker(
    broker: Broker, lock: TimeoutLock | None = None, timeout: float = 1
) -> Iterator[WorkerPool]:
    """Run one worker thread on ``broker`` for the duration of the block.

    Args:
        broker: The broker whose exposed tasks the worker runs.
        lock: When given, the worker acquires it before taking each task, so
            the test decides when each task starts.
        timeout: Seconds the worker waits for a task before checking for stop.

    Raises:
        BaseException: Whatever ended the worker thread, re-raised on exit.
    """
    pool = WorkerPool(broker, workers=1) if lock is None else _GatedPool(broker, lock)
    pool.start(timeout=timeout)
    try:
        yield pool
    finally:
        pool.stop(use_sentinel=lock is None)
    if pool.errors:
        raise pool.errors[0]


def eventually(
    get_value: Callable[[], object], expect: object, timeout: float = WAIT, poll_interval: float = 0
) -> None:
    """Wait until ``get_value()`` equals ``expect``.

    Raises:
        AssertionError: It still differed after ``timeout`` seconds (shows the last value).
    """
    deadline = time.monotonic() + timeout
    nap = max(poll_interval, 0.001)
    while True:
        value = get_value()
        if value == expect:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{value!r} != {expect!r} after {timeout}s")
        time.sleep(nap)


def eq_(value: object, other: object) -> None:
    """Assert ``value == other`` with both shown on failure."""
    if value != other:
        raise AssertionError(f"{value!r} != {other!r}")


@contextmanager
def assert_raises(exc_type: type[BaseException], message: str | None = None) -> Iterator[None]:
    """Assert the block raises ``exc_type`` (and, if given, that ``str(exc) == message``)."""
    try:
        yield
    except exc_type as exc:
        if message is not None and str(exc) != message:
            raise AssertionError(
                f"{exc_type.__name__} message {str(exc)!r} != {message!r}"
            ) from exc
    else:
        raise AssertionError(f"{exc_type.__name__} not raised")


REDIS_START_TIMEOUT = 10.0
"""Seconds a private redis-server may take to answer PING."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on a free port, keeping nothing on disk.

    Args:
        directory: Working directory of the server.
        appendonly: Keep an append-only file, so data survives a restart.
        extra_args: More redis-server options (TLS, unix socket...).
    """

    def __init__(
        self, directory: Path | str, appendonly: bool = False, extra_args: tuple[str, ...] = ()
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not on PATH: install it (apt-get install redis-server, "
                "or `make test`, which does) or set WORQ_TEST_REDIS_URL"
            )
        self.binary = binary
        self.directory = Path(directory)
        self.appendonly = appendonly
        self.extra_args = extra_args
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        import redis  # the redis extra is only needed by callers of this helper

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.exceptions.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log = (self.directory / "redis.log").read_text(errors="replace")
                        raise RuntimeError(f"redis-server did not start:\n{log}") from None
                    time.sleep(0.02)  # waiting for the server socket: no event to wait on
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it to exit."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(REDIS_START_TIMEOUT)
            self.process = None
