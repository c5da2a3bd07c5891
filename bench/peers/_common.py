"""What every system's module in bench/peers/ provides, and helpers they share.

A system module defines its app at import time (the worker processes import
the same module), reading the Redis URL from ``WORQ_BENCH_PEER_URL``, and a
:class:`Peer` saying how to start its workers and how a client submits one
task and waits for its result.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["URL_ENV", "WAIT", "AsyncClient", "Client", "Peer", "bin_path", "url"]

URL_ENV = "WORQ_BENCH_PEER_URL"
"""The environment variable that carries the Redis URL to clients and workers."""

WAIT = 60.0
"""Longest wait for one task's result, in seconds (a hang fails the row)."""


def url() -> str:
    """The benchmark's Redis URL, as the driver set it."""
    return os.environ[URL_ENV]


def bin_path(script: str) -> str:
    """A console script of the environment that runs this Python (the peers' venv)."""
    return str(Path(sys.executable).parent / script)


class Client(Protocol):
    """A system's per-call client API: one task submitted, one result awaited."""

    def submit(self, value: int) -> Any:
        """Send ``noop(value)`` with the system's normal per-call enqueue API."""
        ...

    def wait(self, handle: Any) -> Any:
        """The task's result, with the system's normal result API (at most WAIT s)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class AsyncClient(Protocol):
    """An asyncio-only system's client: the same calls, awaited on the driver's loop.

    The driver runs its whole measurement as one coroutine, as an async service
    would: no event loop is entered or left per call.
    """

    async def open(self) -> None:
        """Connect (whatever the system needs a running loop for)."""
        ...

    async def submit(self, value: int) -> Any:
        """Send ``noop(value)`` with the system's normal per-call enqueue API."""
        ...

    async def wait(self, handle: Any) -> Any:
        """The task's result, with the system's normal result API (at most WAIT s)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class Peer:
    """One system under test.

    Attributes:
        name: Row label.
        distributions: Packages whose versions the row shows, the system's own first.
        workers: How the two workers run (processes, threads, concurrency).
        deviations: Every setting that differs from the system's defaults, and why.
        notes: Defaults kept that shape the numbers, worth knowing when reading them.
        commands: Given nothing, the worker commands to start (one process each).
        processes: Processes in the worker-side tree once every worker is up
            (the roots and all their descendants), the first readiness condition.
        client: Builds a client in the driver's process: a :class:`Client`, or an
            :class:`AsyncClient` for a system whose client API is async.
        stop_signal: The signal that stops the workers gracefully.
        signal_group: Send it to each root's whole process group, not the root alone.
        ready: A further readiness condition, polled once the processes exist.
    """

    name: str
    distributions: tuple[str, ...]
    workers: str
    commands: Callable[[], list[list[str]]]
    processes: int
    client: Callable[[], Client | AsyncClient]
    deviations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    stop_signal: signal.Signals = signal.SIGTERM
    signal_group: bool = False
    ready: Callable[[], bool] | None = None
