"""Fault injection: connections killed under load, so replies are lost after commands ran.

A thread kills every client connection (``CLIENT KILL TYPE normal``) every
20 ms while tasks are sent, run and waited for: the workers', the
heartbeats', the sweeps' and the client's, whatever command each is in.
Every call must ride it out with its retries, and every task must end with
exactly one outcome, its value; the test prints the counts and the kills.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.faults.accounting import check, settle
from worq import Deferred, get_broker
from worq.pool.thread import WorkerPool
from worq.testing import WAIT, RedisServer

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

TASKS = 400
KILL_EVERY = 0.02
KILL_ROUNDS = 15
"""Fewest killing rounds while tasks are sent: the run goes on sending (past
TASKS) until the killer has made them, however fast the machine."""
LEASE = 1.0
"""The workers' initial lease: ids stranded by a lost BLMOVE reply come back within ~2 s."""
SETTLE = 60.0
"""Seconds the whole run may take to settle every task (it takes about 4)."""


class ConnectionKiller:
    """Kills every normal client connection but its own, every ``every`` seconds, in a thread."""

    def __init__(self, url: str, every: float) -> None:
        self.every = every
        self.rounds = self.kills = 0
        self._client = redis.Redis.from_url(url)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.kills += int(self._client.client_kill_filter(_type="normal", skipme=True))
            self.rounds += 1

    def stop(self) -> int:
        """Stop killing; returns how many connections were killed."""
        self._stop.set()
        self._thread.join(WAIT)
        self._client.close()
        return self.kills


def test_connections_killed_every_20_ms_under_load(tmp_path: Path) -> None:
    """400 tasks or more (as long as 15 rounds of killing take) while every connection
    is killed every 20 ms: each one succeeds, once."""
    server = RedisServer(tmp_path)
    server.start()
    url = server.url
    runs: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def double(n: int) -> int:
        with lock:
            runs[n] += 1
        return 2 * n

    worker = get_broker(url, initial_result_timeout=LEASE)
    worker.expose(double)
    pool = WorkerPool(worker, workers=4)
    client = get_broker(url)
    store = redis.Redis.from_url(url)
    try:
        pool.start(timeout=0.1)
        killer = ConnectionKiller(url, KILL_EVERY)
        try:
            q = client.queue(heartrate=0.2)
            results: list[tuple[int, Deferred[Any]]] = []
            while len(results) < TASKS or killer.rounds < KILL_ROUNDS:  # a run that overlaps
                results.append((len(results), q.double(len(results))))
            deadline = time.monotonic() + SETTLE
            waited = [deferred.wait(max(0, deadline - time.monotonic())) for _, deferred in results]
        finally:
            kills = killer.stop()
            pool.stop()
        assert all(waited), f"{waited.count(False)} tasks unsettled"
        if runs:
            store.rpush("runs", *runs.elements())
        ledger = settle(url, results)
        permanent = {key for key in store.scan_iter("worq:*") if store.pttl(key) < 0}
    finally:
        store.close()
        client.close()
        worker.close()
        server.stop()
    print(f"\nconnections killed: {kills} in {killer.rounds} rounds, {len(results)} tasks")
    check(ledger, len(results), retries=0, all_succeed=True)
    assert kills > KILL_ROUNDS, "the killing hit almost no connection of the run"
    assert permanent == {b"worq:{default}:leases"}  # taken results and records all expire
