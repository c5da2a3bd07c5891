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
from typing import Any

from worq.core import Broker
from worq.models import TaskMessage
from worq.pool.thread import WorkerPool

__all__ = [
    "WAIT",
    "RedisCluster",
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


CLUSTER_START_TIMEOUT = 30.0
"""Seconds a test cluster has to agree that every slot is served."""


class RedisCluster:
    """A private Redis Cluster for tests: 3 masters and 3 replicas on loopback ports.

    Six ``redis-server --cluster-enabled yes`` processes, each in a directory
    of its own, joined with ``redis-cli --cluster create ... --cluster-replicas 1``.
    :meth:`start` returns once every node reports ``cluster_state:ok``; :meth:`stop`
    stops each server by its pid.

    Args:
        directory: Parent of the six servers' working directories.
        node_timeout_ms: ``cluster-node-timeout``: how long a master may be
            unreachable before its replica takes over (short, so that failover
            tests do not wait long).

    Raises:
        RuntimeError: redis-server or redis-cli is not on PATH.
    """

    MASTERS = 3
    REPLICAS_PER_MASTER = 1

    def __init__(self, directory: Path | str, node_timeout_ms: int = 2000) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError(
                "redis-cli is not on PATH: install it (apt-get install redis-tools, or "
                "`make test`, which does)"
            )
        self.cli = cli
        self.directory = Path(directory)
        count = self.MASTERS * (1 + self.REPLICAS_PER_MASTER)
        self.nodes: list[RedisServer] = []
        for index in range(count):
            folder = self.directory / f"node-{index}"
            folder.mkdir(parents=True, exist_ok=True)
            options = (
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(folder / "nodes.conf"),
                "--cluster-node-timeout", str(node_timeout_ms),
                # the bus port is the client port + 10000 unless set: set it, as
                # a free client port can be above 55535
                "--cluster-port", str(free_port()),
                # a replica's first sync starts at once, not after the default 5 s
                "--repl-diskless-sync-delay", "0",
            )  # fmt: skip
            self.nodes.append(RedisServer(folder, extra_args=options))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node, masters-to-be first."""
        return [("127.0.0.1", node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming every node as a seed."""
        return "redis+cluster://" + ",".join(f"{host}:{port}" for host, port in self.addresses)

    def flush(self) -> None:
        """Empty every master (FLUSHALL), so that a test starts on an empty cluster."""
        import redis  # the redis extra is only needed by callers of this helper

        for host, port in self.addresses:
            node = redis.Redis(host=host, port=port)
            try:
                if node.info("replication")["role"] == "master":
                    node.flushall()
            finally:
                node.close()

    def start(self) -> None:
        """Start the six servers, join them, and wait until the cluster serves every slot."""
        for node in self.nodes:
            node.start()
        command = [
            self.cli, "--cluster", "create",
            *(f"{host}:{port}" for host, port in self.addresses),
            "--cluster-replicas", str(self.REPLICAS_PER_MASTER), "--cluster-yes",
        ]  # fmt: skip
        made = subprocess.run(
            command, capture_output=True, text=True, timeout=CLUSTER_START_TIMEOUT
        )
        if made.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed:\n{made.stdout}{made.stderr}")
        self._wait_until_ok()

    def _wait_until_ok(self) -> None:
        """Until every node sees all slots served and every replica's link to its master is up."""
        import redis  # the redis extra is only needed by callers of this helper

        clients = [redis.Redis(host=host, port=port) for host, port in self.addresses]
        deadline = time.monotonic() + CLUSTER_START_TIMEOUT
        try:
            while not self._ready(clients):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the test cluster in {self.directory} is not ready after "
                        f"{CLUSTER_START_TIMEOUT}s: see the nodes' redis.log"
                    )
                time.sleep(0.05)  # gossip has no event to wait on: poll the condition
        finally:
            for client in clients:
                client.close()

    def _ready(self, clients: list[Any]) -> bool:
        """Every node serves all slots and knows each range's master and replicas,
        and every replica's link to its master is up."""
        replicas_up = 0
        for client in clients:
            info = client.cluster("INFO")
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                return False
            ranges = client.execute_command("CLUSTER", "SLOTS")
            if len(ranges) != self.MASTERS or any(
                len(entry) - 2 != 1 + self.REPLICAS_PER_MASTER for entry in ranges
            ):
                return False
            replication = client.info("replication")
            if replication.get("role") == "slave" and replication.get("master_link_status") == "up":
                replicas_up += 1
        return replicas_up == self.MASTERS * self.REPLICAS_PER_MASTER

    def stop(self) -> None:
        """Stop every node (SIGTERM by pid) and wait for each to exit."""
        for node in self.nodes:
            node.stop()
