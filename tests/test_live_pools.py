"""Live pools: each pool's record in the backend, while it runs and after."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from structlog.testing import capture_logs

from worq import get_broker
from worq.core import Broker
from worq.models import PoolRecord
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.testing import WAIT, eventually


@pytest.mark.parametrize("kind", ["thread", "asyncio"])
def test_a_pool_is_listed_with_what_it_runs_until_it_stops(url: str, kind: str) -> None:
    """A started pool is listed at once; its record says who it is, counts the runs it
    finished and names the task it runs now; a stopped pool is gone at once."""
    release = threading.Event()

    def hold(n: int) -> int:
        assert release.wait(WAIT)
        return n

    broker = get_broker(url, "live")
    broker.expose(hold)
    pool = ThreadPool(broker, workers=3) if kind == "thread" else AsyncioPool(broker, 3)
    before = time.time()
    pool.start(timeout=0.05)
    try:
        (record,) = broker.live_pools()
        assert (record.kind, record.queue, record.workers, record.pid) == (
            kind, "live", 3, os.getpid(),
        )  # fmt: skip
        assert record.host == socket.gethostname()
        assert record.name == "worq-live"
        assert before <= record.started <= record.updated <= time.time()
        assert (record.tasks_done, record.running) == (0, ())
        q = broker.queue()
        first = q.hold(1)
        held = q.hold(2)
        release.set()
        assert first.wait(WAIT)
        assert held.wait(WAIT)
        release.clear()
        third = q.hold(3)
        eventually(lambda: _only(broker).running, (third.id,), timeout=WAIT)
        assert _only(broker).tasks_done == 2
        assert _only(broker).id == record.id
        release.set()
        assert third.wait(WAIT)
    finally:
        release.set()
        pool.stop()
    assert broker.live_pools() == []


def _only(broker: Broker) -> PoolRecord:
    (record,) = broker.live_pools()
    return record


def test_two_pools_are_listed_by_start(url: str) -> None:
    brokers = [get_broker(url, "live") for _ in range(2)]
    pools = [ThreadPool(broker) for broker in brokers]
    for pool in pools:
        pool.start(timeout=0.05)
    try:
        listed = brokers[0].live_pools()
        assert len(listed) == 2
        assert listed[0].started <= listed[1].started
        assert len({record.id for record in listed}) == 2
    finally:
        for pool in pools:
            pool.stop()
    assert brokers[0].live_pools() == []


def test_a_record_lapses_when_its_pool_stops_announcing(url: str) -> None:
    """A record not announced again within its time to live is no longer listed
    (what happens to the record of a pool that died)."""
    broker = get_broker(url, "live")
    record = PoolRecord(
        id="h:1:abc", host="h", pid=1, kind="thread", name="worq-live", queue="live",
        workers=1, started=0.0, tasks_done=0, running=(), updated=0.0,
    )  # fmt: skip
    broker.announce_pool(record, 0.2)
    assert broker.live_pools() == [record]
    eventually(broker.live_pools, [], timeout=WAIT)


def test_an_unreadable_record_is_reported_and_left_out(url: str) -> None:
    broker = get_broker(url, "live")
    broker.taskqueue.announce_pool("stranger", b"not json", 60)
    with capture_logs() as logs:
        assert broker.live_pools() == []
    (event,) = logs
    assert (event["event"], event["pool_id"]) == ("pool.record_unreadable", "stranger")
    assert "not a worq pool record" in event["error"]
