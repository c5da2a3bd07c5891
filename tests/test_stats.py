"""Per-minute stats: every pool adds its runs to the queue's, kept in the backend."""

from __future__ import annotations

import time

import pytest

from tests import process_tasks
from worq import Task, TaskSpace, get_broker
from worq.core import Broker
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.stats import DURATION_BOUNDS, KEEP_MINUTES, MinuteStats, PoolStats, percentile
from worq.testing import WAIT, eventually

ts = TaskSpace("st")


@ts.task
def square(n: int) -> int:
    if n < 0:
        raise ValueError("negative")
    return n * n


def totals(broker: Broker) -> dict[str, int]:
    summed: dict[str, int] = {}
    for minute in broker.stats(5):
        for outcome, count in minute.outcomes.items():
            summed[outcome] = summed.get(outcome, 0) + count
    return summed


@pytest.mark.parametrize("kind", ["thread", "asyncio"])
def test_a_pool_adds_its_runs_per_minute(url: str, kind: str) -> None:
    broker = get_broker(url, "st")
    broker.expose(ts)
    pool = ThreadPool(broker, 2) if kind == "thread" else AsyncioPool(broker, 2)
    pool.start(timeout=0.05)
    try:
        q = broker.queue()
        runs = [q.st.square(n) for n in range(4)] + [q.st.square(-1)]
        assert all(d.wait(WAIT) for d in runs)
        eventually(lambda: totals(broker), {"succeeded": 4, "failed": 1})  # with a heartbeat
    finally:
        pool.stop()
    asked_in = int(time.time() // 60) * 60
    minutes = broker.stats(KEEP_MINUTES)
    assert len(minutes) == KEEP_MINUTES
    assert [m.minute for m in minutes] == sorted(m.minute for m in minutes)
    assert minutes[-1].minute in (asked_in, int(time.time() // 60) * 60)  # a minute may turn
    assert sum(sum(m.durations) for m in minutes) == 5


def test_a_process_pool_adds_the_runs_of_its_workers(url: str) -> None:
    pool = ProcessPool(process_tasks.init(url), process_tasks.init, workers=2)
    pool.start(timeout=0.1, handle_sigterm=False)
    try:
        q = get_broker(url).queue()
        added = [q.proc.add([n]) for n in range(3)]
        wrong = Task(q.proc.add, retries=1, retry_backoff=0)(["x"])
        assert all(d.wait(WAIT) for d in [*added, wrong])
        broker = get_broker(url)
        eventually(lambda: totals(broker), {"succeeded": 3, "failed": 1})
    finally:
        pool.stop()


def test_counts_a_heartbeat_could_not_send_wait_for_the_next() -> None:
    stats = PoolStats("q")
    stats.count([("succeeded", "t", 0.002), ("failed", "t", 200.0), ("retried", "t", None)])
    drained = stats.drain()
    minute = int(time.time() // 60)
    assert drained == {
        (minute, "succeeded"): 1, (minute, "d1"): 1, (minute, "failed"): 1,
        (minute, "d14"): 1, (minute, "retried"): 1,
    }  # fmt: skip
    assert stats.drain() == {}
    stats.restore(drained)
    assert stats.drain() == drained


def test_percentiles_come_from_the_buckets() -> None:
    durations = [0] * len(DURATION_BOUNDS)
    assert percentile(durations, 0.5) is None
    durations[2], durations[8] = 90, 10  # 90 runs within 10 ms, 10 within 1 s
    assert percentile(durations, 0.5) == 0.01
    assert percentile(durations, 0.95) == 1
    odd = MinuteStats.from_fields(7, {"succeeded": 3, "d2": 3, "bogus": 1, "d99": 1})
    assert (odd.minute, dict(odd.outcomes), odd.durations[2]) == (420, {"succeeded": 3}, 3)


def test_bad_spans_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="minutes must be from 1 to 60"):
        get_broker(url).stats(0)
