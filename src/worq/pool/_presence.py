"""A pool's presence: its record in the backend, refreshed while it lives.

Each pool announces itself when it starts (``Broker.announce_pool``): who it
is (host, pid, kind, workers), when it started, how many tasks it finished
and which it runs now. A thread of its own announces it again every
:data:`ANNOUNCE_EVERY` seconds, each record living :data:`ANNOUNCE_TTL`
seconds: a pool that dies, SIGKILLed or cut off, stops announcing, and its
record lapses on its own. A pool that stops says so. ``worq info`` lists the
records (``Broker.live_pools``). Each announcement also adds the pool's
per-minute counts of the runs it ended to the queue's (:mod:`worq.stats`).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from worq._events import logger
from worq.core import Broker
from worq.models import RUNNING_SHOWN, PoolRecord
from worq.pool._outages import describe
from worq.stats import PoolStats

__all__ = ["ANNOUNCE_EVERY", "ANNOUNCE_TTL", "Activity", "PoolPresence"]

ANNOUNCE_EVERY = 2.0
"""Seconds between two announcements of a live pool."""

ANNOUNCE_TTL = 10.0
"""Seconds a pool's record lives unless announced again: several missed
announcements (a slow backend, a stalled process) before a live pool vanishes."""

Activity = Callable[[], tuple[int, list[str]]]
"""How many runs a pool finished, and the ids of the tasks it runs now."""


class PoolPresence:
    """Announces one pool until :meth:`close`.

    Args:
        broker: The pool's broker.
        kind: ``"thread"``, ``"process"`` or ``"asyncio"``.
        name: The pool's name.
        workers: Its workers (threads, processes, or the asyncio pool's concurrency).
        activity: Reads its finished count and running task ids.
        stats: Its per-minute counts, sent with each announcement.
    """

    def __init__(
        self,
        broker: Broker,
        kind: str,
        name: str,
        workers: int,
        activity: Activity,
        stats: PoolStats,
    ) -> None:
        self._broker = broker
        self._stats = stats
        self._kind, self._name, self._workers = kind, name, workers
        self._activity = activity
        self._host = socket.gethostname()
        self.id = f"{self._host}:{os.getpid()}:{secrets.token_hex(3)}"
        self._started = time.time()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-presence", daemon=True)

    def start(self) -> None:
        """Announce the pool now (so that it is listed once started), then keep doing so."""
        self._announce()
        self._thread.start()

    def close(self) -> None:
        """Stop announcing and say the pool is gone."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self._send_stats()
            self._broker.announce_pool(self.record(), 0)
        except Exception as exc:  # the backend is down: the record lapses on its own
            logger.warning("pool.announce_failed", queue=self._broker.name, pool=self._name,
                           error=describe(exc))  # fmt: skip

    def record(self) -> PoolRecord:
        """The pool's record as of now."""
        done, running = self._activity()
        return PoolRecord(
            id=self.id, host=self._host, pid=os.getpid(), kind=self._kind, name=self._name,
            queue=self._broker.name, workers=self._workers, started=self._started,
            tasks_done=done, running=tuple(running[:RUNNING_SHOWN]), updated=time.time(),
        )  # fmt: skip

    def _run(self) -> None:
        while not self._closing.wait(ANNOUNCE_EVERY):
            self._announce()

    def _announce(self) -> None:
        try:
            self._broker.announce_pool(self.record(), ANNOUNCE_TTL)
            self._send_stats()
        except Exception as exc:  # an outage: the pool's other threads report it too
            logger.warning("pool.announce_failed", queue=self._broker.name, pool=self._name,
                           error=describe(exc))  # fmt: skip

    def _send_stats(self) -> None:
        """Add the counts since the last announcement to the queue's; kept for the next
        one when the backend refuses them."""
        counts = self._stats.drain()
        if counts:
            try:
                self._broker.add_stats(counts)
            except BaseException:
                self._stats.restore(counts)
                raise
