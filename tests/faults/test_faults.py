"""Fault injection: kill workers, pools, Redis and clients; account for every task.

Each test prints its accounting (``pytest -s`` shows it): how many tasks
succeeded or expired, how many runs there were, how many ran more than once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.faults import fault_tasks
from tests.faults.accounting import check, settle
from worq import Deferred, Task, get_broker
from worq.pool.process import WorkerPool
from worq.task import Queue
from worq.testing import WAIT, RedisServer, eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

ROOT = Path(__file__).parent.parent.parent
HEARTRATE = 0.2


def client_queue(url: str) -> Queue:
    """A client queue whose tasks beat often, so lost leases show within a second."""
    return get_broker(url).queue(heartrate=HEARTRATE)


def send(
    q: Queue, url: str, numbers: range, retries: int, hold: float
) -> list[tuple[int, Deferred[Any]]]:
    """Send ``work(url, n, hold)`` for each n; returns (n, Deferred) pairs."""
    task = Task(q.fault.work, retries=retries, retry_backoff=0.05, retry_backoff_max=0.2)
    return [(n, task(url, n, hold)) for n in numbers]


def run_count(url: str) -> int:
    """How many runs the tasks have recorded so far."""
    client = redis.Redis.from_url(url)
    try:
        return client.llen("runs")
    finally:
        client.close()


@pytest.fixture
def started_pools() -> Iterator[Callable[..., WorkerPool]]:
    """Starts process pools of the fault tasks; stops them all at the end."""
    pools: list[WorkerPool] = []

    def start(url: str, workers: int = 2) -> WorkerPool:
        pool = WorkerPool(fault_tasks.init(url), fault_tasks.init, workers=workers)
        pool.start(timeout=0.1, handle_sigterm=False)
        pools.append(pool)
        return pool

    yield start
    for pool in pools:
        pool.stop(join=False)
    for pool in pools:
        pool.join()


class Killer:
    """SIGKILLs a random worker of the given pools every ``every`` seconds, in a thread."""

    def __init__(self, pools: list[WorkerPool], every: float, limit: int) -> None:
        self.pools, self.every, self.limit = pools, every, limit
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        chooser = random.Random(1234)
        while not self._stop.wait(self.every) and self.kills < self.limit:
            pids = [pid for pool in self.pools for pid in pool.worker_pids()]
            if pids:
                try:
                    os.kill(chooser.choice(pids), signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass  # it died on its own meanwhile

    def stop(self) -> int:
        """Stop killing; returns how many workers were killed."""
        self._stop.set()
        self._thread.join(WAIT)
        return self.kills


@pytest.mark.parametrize("retries", [0, 3])
def test_sigkill_workers_mid_task(
    clean_redis_url: str, started_pools: Callable[..., WorkerPool], retries: int
) -> None:
    """Workers SIGKILLed mid-task: each task still ends once (retried or expired)."""
    url = clean_redis_url
    pool = started_pools(url)
    results = send(client_queue(url), url, range(60), retries, hold=0.05)
    killer = Killer([pool], every=0.3, limit=6)
    eventually(lambda: killer.kills >= 3 or run_count(url) >= 60, True, timeout=60)
    ledger = settle(url, results)
    print(f"workers killed: {killer.stop()}")
    check(ledger, 60, retries, all_succeed=False)
    if retries == 0:
        assert all(count == 1 for count in ledger.runs.values())


def test_sigkill_a_whole_pool_while_another_runs(
    clean_redis_url: str, started_pools: Callable[..., WorkerPool]
) -> None:
    """A pool SIGKILLed with tasks in flight: the surviving pool reaps and reruns them."""
    url = clean_redis_url
    doomed = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.pool_runner", url],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline().strip() == "ready"
        q = client_queue(url)
        first = send(q, url, range(2), retries=1, hold=3.0)  # both of the doomed pool's workers
        eventually(lambda: run_count(url), 2)
        started_pools(url)
        rest = send(q, url, range(2, 30), retries=1, hold=0.02)
        doomed.kill()
        doomed.wait(WAIT)
    finally:
        if doomed.stdout is not None:
            doomed.stdout.close()
    ledger = settle(url, first + rest)
    check(ledger, 30, retries=1, all_succeed=True)
    assert ledger.runs[0] == ledger.runs[1] == 2  # killed mid-run, run again by the survivor


def test_redis_restarted_mid_load(tmp_path: Path, started_pools: Callable[..., WorkerPool]) -> None:
    """Redis stopped and started again (appendonly) under load: every task accounted for."""
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        url = server.url
        started_pools(url)
        results = send(client_queue(url), url, range(150), retries=2, hold=0.01)
        eventually(lambda: run_count(url) >= 30, True, timeout=60)
        server.stop()
        threading.Event().wait(0.5)  # the outage under test
        server.start()
        ledger = settle(url, results)
    finally:
        server.stop()
    check(ledger, 150, retries=2, all_succeed=True)


CLIENT = """
import sys
from worq import get_broker
url = sys.argv[1]
q = get_broker(url).queue()
n = 0
while True:
    d = q.fault.work(url, n, 0)
    print(n, d.id, flush=True)
    n += 1
"""


def test_client_killed_while_enqueueing(
    clean_redis_url: str, started_pools: Callable[..., WorkerPool]
) -> None:
    """A client SIGKILLed mid-enqueue leaves no half-stored task; what it sent runs."""
    url = clean_redis_url
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, url], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert client.stdout is not None
    sent = [client.stdout.readline().split() for _ in range(200)]
    client.kill()
    client.wait(WAIT)
    client.stdout.close()
    store = redis.Redis.from_url(url)
    try:
        for key in store.scan_iter("worq:{default}:task:*"):
            fields = store.hgetall(key)
            assert {b"status", b"msg"} <= set(fields), (key, fields)
        stored = sum(1 for _ in store.scan_iter("worq:{default}:task:*"))
    finally:
        store.close()
    assert stored >= len(sent)
    started_pools(url)
    broker = get_broker(url)
    results: list[tuple[int, Deferred[Any]]] = [
        (int(n), Deferred(broker, task_id, "fault.work")) for n, task_id in sent
    ]
    check(settle(url, results), len(sent), retries=0, all_succeed=True)


SOAK_TASKS = int(os.environ.get("WORQ_SOAK_TASKS", "20000"))


def test_soak_two_pools_with_random_worker_kills(
    clean_redis_url: str, started_pools: Callable[..., WorkerPool]
) -> None:
    """20,000 tasks through two process pools while a worker is killed every 500 ms."""
    url = clean_redis_url
    pools = [started_pools(url), started_pools(url)]
    killer = Killer(pools, every=0.5, limit=10_000)
    results = send(client_queue(url), url, range(SOAK_TASKS), retries=5, hold=0)
    ledger = settle(url, results)
    print(f"workers killed: {killer.stop()}")
    check(ledger, SOAK_TASKS, retries=5, all_succeed=False)


def test_pool_paused_past_its_leases(
    clean_redis_url: str, started_pools: Callable[..., WorkerPool]
) -> None:
    """A pool SIGSTOPped longer than its leases, then resumed: one outcome per task.

    The other pool reaps and reruns the paused pool's tasks; when the paused
    one wakes, its stale runs finish under leases that are no longer theirs,
    so their outcomes are dropped, and its heartbeats for the reruns it may
    take meanwhile are its own (no retry is wasted).
    """
    url = clean_redis_url
    paused = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.pool_runner", url],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert paused.stdout is not None
        assert paused.stdout.readline().strip() == "ready"
        q = client_queue(url)
        first = send(q, url, range(2), retries=1, hold=1.0)  # both of its workers
        eventually(lambda: run_count(url), 2)
        os.killpg(paused.pid, signal.SIGSTOP)
        started_pools(url)
        rest = send(q, url, range(2, 60), retries=1, hold=0.02)
        eventually(lambda: run_count(url) >= 30, True, timeout=60)
        threading.Event().wait(3 * fault_tasks.LEASE)  # the pause under test: past every lease
        os.killpg(paused.pid, signal.SIGCONT)
        ledger = settle(url, first + rest)
    finally:
        os.killpg(paused.pid, signal.SIGCONT)
        paused.terminate()
        paused.wait(WAIT)
        if paused.stdout is not None:
            paused.stdout.close()
    check(ledger, 60, retries=1, all_succeed=True)
    assert ledger.runs[0] == ledger.runs[1] == 2  # paused mid-run, run again by the other pool
