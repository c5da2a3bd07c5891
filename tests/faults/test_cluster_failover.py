"""A Redis Cluster master SIGKILLed under load: its replica takes over, and nothing stops.

Three queues (on three different masters, as their hash tags fall), a
process pool on each and one client sending 2,000 tasks over them; the
master serving the first queue is killed mid-run. The pools and the client
ride out the failover without restarts; every task id is accounted for.

Runs are recorded on a plain Redis server of their own (the ledger), so that
the count of runs does not depend on the cluster under test.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.faults import fault_tasks
from tests.faults.accounting import settle
from worq import BackendUnavailable, Deferred, Task, get_broker
from worq.pool.process import WorkerPool
from worq.queue.redis import TaskQueue
from worq.testing import WAIT, RedisCluster, RedisServer, eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

TASKS = 2000
QUEUES = ("alpha", "bravo", "charlie")
RETRIES = 2


def _master_port(url: str, queue: str) -> int:
    tq = TaskQueue(url, queue)
    try:
        port: int = tq.redis.connection_pool.connection_kwargs["port"]
        return port
    finally:
        tq.close()


def _send(task: Task[Any], ledger_url: str, n: int) -> Deferred[Any]:
    """Send task ``n``, again under the same id while the cluster is failing over."""
    while True:
        try:
            deferred: Deferred[Any] = task(ledger_url, n, 0)
            return deferred
        except BackendUnavailable:
            continue  # a send given up is picked up by sending the same id again


def test_a_master_killed_under_load_fails_over_and_every_task_is_accounted_for(
    tmp_path: Path,
) -> None:
    (tmp_path / "ledger").mkdir()
    cluster = RedisCluster(tmp_path / "cluster")
    ledger_server = RedisServer(tmp_path / "ledger")
    pools: list[WorkerPool] = []
    try:
        cluster.start()
        ledger_server.start()
        url, ledger_url = cluster.url, ledger_server.url
        brokers = {}
        for queue in QUEUES:
            broker = fault_tasks.init(url, queue)
            pool = WorkerPool(broker, fault_tasks.init, init_args=(queue,), workers=1)
            pool.start(timeout=0.1, handle_sigterm=False)
            pools.append(pool)
            brokers[queue] = get_broker(url, queue).queue(heartrate=0.2)
        victim = _master_port(url, QUEUES[0])
        tasks = {
            queue: Task(
                q.fault.work,
                id=lambda _url, n, _hold: f"t{n}",
                retries=RETRIES,
                retry_backoff=0.05,
                retry_backoff_max=0.2,
            )
            for queue, q in brokers.items()
        }
        sent: list[tuple[int, Deferred[Any]]] = []
        killed = threading.Event()

        def kill_when_busy() -> None:
            eventually(lambda: len(sent) >= TASKS // 4, True, timeout=WAIT)
            node = next(n for n in cluster.nodes if n.port == victim)
            assert node.process is not None
            os.kill(node.process.pid, signal.SIGKILL)
            killed.set()

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        for n in range(TASKS):
            queue = QUEUES[n % len(QUEUES)]
            sent.append((n, _send(tasks[queue], ledger_url, n)))
        killer.join(WAIT)
        assert killed.is_set()
        ledger = settle(ledger_url, sent, ride_out_outages=True)
        assert _master_port(url, QUEUES[0]) != victim  # the replica took over
    finally:
        for pool in pools:
            pool.stop(join=False)
        for pool in pools:
            pool.join()
        cluster.stop()
        ledger_server.stop()
    kinds = collections.Counter(ledger.outcomes.values())
    retried = sum(1 for count in ledger.runs.values() if count > 1)
    lost = sorted(n for n, o in ledger.outcomes.items() if o == "expired")
    print(
        f"\nfailover accounting: tasks={len(ledger.outcomes)} succeeded={kinds['succeeded']} "
        f"retried={retried} lost_in_replication_window={len(lost)} {ledger.summary()}"
    )
    assert len(ledger.outcomes) == TASKS
    bad = {n: o for n, o in ledger.outcomes.items() if o in ("missing", "wrong", "failed")}
    assert bad == {}, (bad, ledger.errors)
    assert {n: c for n, c in ledger.runs.items() if c > RETRIES + 1} == {}
    assert all(ledger.runs[n] >= 1 for n, o in ledger.outcomes.items() if o == "succeeded")
