"""The thread worker pool: start/stop, heartbeats, crashed tasks."""

from __future__ import annotations

import threading

import pytest

from worq import TaskFailure, get_broker, get_queue
from worq.pool.thread import Error, WorkerPool
from worq.testing import WAIT


def test_start_twice_and_bad_workers(url: str) -> None:
    """Starting a running pool raises pool Error; workers must be a positive int."""
    pool = WorkerPool(get_broker(url), workers=2)
    pool.start(timeout=0.05)
    try:
        with pytest.raises(Error, match="already started"):
            pool.start()
    finally:
        pool.stop()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be a positive int"):
            WorkerPool(get_broker(url), workers=bad)  # type: ignore[arg-type]  # the mistake under test


def test_workers_run_tasks_in_parallel(url: str) -> None:
    """Two workers run two tasks at once (each waits for the other to start)."""
    barrier = threading.Barrier(2, timeout=WAIT)

    def meet(n: int) -> int:
        barrier.wait()
        return n

    broker = get_broker(url)
    broker.expose(meet)
    pool = WorkerPool(broker, workers=2)
    pool.start(timeout=0.05)
    try:
        q = get_queue(url)
        results = [q.meet(1), q.meet(2)]
        assert all(r.wait(WAIT) for r in results)
        assert [r.value for r in results] == [1, 2]
    finally:
        pool.stop(use_sentinel=True)


def test_heartbeats_keep_long_task_alive(url: str) -> None:
    """A task running past the initial result timeout survives thanks to heartbeats."""
    release = threading.Event()
    started = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(WAIT)
        return "done"

    broker = get_broker(url, initial_result_timeout=0.2)
    broker.expose(slow)
    pool = WorkerPool(broker)
    pool.start(timeout=0.05)
    try:
        q = get_queue(url, heartrate=0.05)
        res = q.slow()
        assert started.wait(WAIT)
        assert not res.wait(0.6)  # three initial timeouts pass while it runs
        release.set()
        assert res.wait(WAIT)
        assert res.value == "done"
    finally:
        pool.stop()


def test_task_raising_system_exit_fails_and_worker_goes_on(url: str) -> None:
    """A task raising SystemExit fails with its text at once; the worker keeps working."""

    def leave() -> None:
        raise SystemExit(3)

    broker = get_broker(url)
    broker.expose(leave)
    pool = WorkerPool(broker)
    pool.start(timeout=0.05)
    try:
        res = get_queue(url).leave()
        assert res.wait(WAIT)
        with pytest.raises(TaskFailure, match=r"SystemExit: 3$"):
            res.value  # noqa: B018  # the attribute access is the test
        assert res.status == "failed"
        assert [type(e) for e in pool.errors] == [SystemExit]
        after = get_queue(url).leave()
        assert after.wait(WAIT)
        assert len(pool.errors) == 2
    finally:
        pool.stop()


def test_stop_without_join_then_join(url: str) -> None:
    """stop(join=False) returns at once; join() then waits for the threads."""
    pool = WorkerPool(get_broker(url), workers=2)
    pool.start(timeout=0.05)
    pool.stop(join=False)
    pool.join()
    assert all(not t.is_alive() for t in pool._threads)
