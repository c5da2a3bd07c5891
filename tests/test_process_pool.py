"""The process pool: real parallel workers that survive crashes and signals."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from tests import process_tasks
from worq import TaskExpired, get_queue
from worq.pool.process import Error, WorkerPool, run_in_subprocess
from worq.testing import WAIT, eventually

ROOT = Path(__file__).parent.parent


@pytest.fixture
def pool(url: str) -> Iterator[WorkerPool]:
    """A started one-worker process pool on ``url`` running the proc tasks."""
    started = WorkerPool(process_tasks.init(url), process_tasks.init, workers=1)
    started.start(timeout=0.2, handle_sigterm=False)
    try:
        yield started
    finally:
        started.stop()


def test_tasks_run_in_worker_processes(pool: WorkerPool, url: str) -> None:
    """Tasks, dependency graphs included, run in another process on both backends."""
    q = get_queue(url)
    worker_pid = q.proc.pid()
    total = q.proc.add([q.proc.add([1, 2]), 3])
    assert worker_pid.wait(WAIT)
    assert total.wait(WAIT)
    assert worker_pid.value != os.getpid()
    assert worker_pid.value in pool.worker_pids()
    assert total.value == 6


def test_start_twice(pool: WorkerPool) -> None:
    """Starting a started pool raises worq.pool.process.Error."""
    with pytest.raises(Error, match="was already started"):
        pool.start(handle_sigterm=False)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_worker_dying_in_task_expires_it_and_is_replaced(
    pool: WorkerPool, url: str, how: str
) -> None:
    """A worker dying mid-task fails it with TaskExpired at once; a new worker takes over."""
    q = get_queue(url)
    first = q.proc.pid()
    assert first.wait(WAIT)
    doomed = q.proc.die(how)
    assert doomed.wait(WAIT), repr(doomed)
    with pytest.raises(TaskExpired, match=r"worker process \d+ died \(exit code (7|-9)\)"):
        doomed.value  # noqa: B018  # the attribute access is the test
    after = q.proc.pid()
    assert after.wait(WAIT)
    assert after.value != first.value


def test_max_worker_tasks_retires_workers(url: str) -> None:
    """With max_worker_tasks=2 every two tasks run in a fresh worker process."""
    pool = WorkerPool(process_tasks.init(url), process_tasks.init, workers=1, max_worker_tasks=2)
    pool.start(timeout=0.2, handle_sigterm=False)
    try:
        q = get_queue(url)
        pids = []
        for _ in range(5):
            res = q.proc.pid()
            assert res.wait(WAIT)
            pids.append(res.value)
    finally:
        pool.stop()
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_heartbeats_keep_a_long_task_alive(clean_redis_url: str) -> None:
    """The pool heartbeats a task running past its initial result timeout."""
    url = clean_redis_url
    broker = process_tasks.init(url)
    broker.taskqueue.initial_lease = 0.3
    pool = WorkerPool(broker, process_tasks.init, workers=1)
    pool.start(timeout=0.2, handle_sigterm=False)
    client = redis.Redis.from_url(url)
    try:
        res = get_queue(url, heartrate=0.1).proc.wait_for_key(url, "go", WAIT)
        eventually(lambda: res.status, "processing")
        assert not res.wait(1.0)  # three initial timeouts pass while it runs
        client.rpush("go", "1")
        assert res.wait(WAIT)
        assert res.value == "released"
    finally:
        client.close()
        pool.stop()


def test_bad_arguments() -> None:
    """Bad workers / max_worker_tasks / init_func values are refused up front."""
    broker = process_tasks.init("memory://bad-args")
    for bad in (0, -2, 1.5, "2"):
        with pytest.raises(ValueError, match="workers must be a positive int"):
            WorkerPool(broker, process_tasks.init, workers=bad)  # type: ignore[arg-type]  # under test
        with pytest.raises(ValueError, match="max_worker_tasks must be a positive int"):
            WorkerPool(broker, process_tasks.init, max_worker_tasks=bad)  # type: ignore[arg-type]  # under test
    with pytest.raises(ValueError, match="init_func must be callable"):
        WorkerPool(broker, "tasks:init")  # type: ignore[arg-type]  # under test
    assert WorkerPool(broker, process_tasks.init).workers == (os.cpu_count() or 1)


def test_init_func_not_returning_a_broker_is_logged(url: str) -> None:
    """A worker whose init function returns no Broker is reported, not run."""
    with capture_logs() as logs:
        broken = process_tasks.init_not_a_broker
        pool = WorkerPool(process_tasks.init(url), broken, workers=1)  # type: ignore[arg-type]  # under test
        pool.start(timeout=0.2, handle_sigterm=False)
        try:
            eventually(lambda: any(e["event"] == "worker.init_failed" for e in logs), True)
        finally:
            pool.stop()
    failure = next(e for e in logs if e["event"] == "worker.init_failed")
    assert "not a worq Broker" in failure["error"]


def test_run_in_subprocess() -> None:
    """run_in_subprocess returns a started process handle."""
    process = run_in_subprocess(os._exit, 5)
    process.join(WAIT)
    assert not process.is_alive()
    assert process.exitcode == 5
