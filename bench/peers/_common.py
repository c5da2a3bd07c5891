"""What every system's module in bench/peers/ provides, and helpers they share.

A system module defines its app at import time (the worker processes import
the same module), reading the Redis URL from ``WORQ_BENCH_PEER_URL``, and a
:class:`Peer` saying how to start its workers and how a client submits one
task and waits for its result.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

__all__ = ["URL_ENV", "WAIT", "AsyncLoop", "Client", "Peer", "bin_path", "url"]

URL_ENV = "WORQ_BENCH_PEER_URL"
"""The environment variable that carries the Redis URL to clients and workers."""

WAIT = 60.0
"""Longest wait for one task's result, in seconds (a hang fails the row)."""

T = TypeVar("T")


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
        client: Builds a client in the driver's process.
        stop_signal: The signal that stops the workers gracefully.
        signal_group: Send it to each root's whole process group, not the root alone.
        ready: A further readiness condition, polled once the processes exist.
    """

    name: str
    distributions: tuple[str, ...]
    workers: str
    commands: Callable[[], list[list[str]]]
    processes: int
    client: Callable[[], Client]
    deviations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    stop_signal: signal.Signals = signal.SIGTERM
    signal_group: bool = False
    ready: Callable[[], bool] | None = None


class AsyncLoop:
    """One event loop kept for a client's life, for the asyncio-only peers.

    Each per-call submit and wait runs one coroutine to completion on it, so the
    driver's loop stays the same for every system.
    """

    def __init__(self) -> None:
        self._runner = asyncio.Runner()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def close(self) -> None:
        self._runner.close()
