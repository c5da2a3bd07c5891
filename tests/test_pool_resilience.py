"""Pool threads outlive whatever a backend call raises, and keep each run's lease apart."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from tests import process_tasks
from tests.outcomes import outcome
from worq import Task, TaskExpired, get_broker, get_queue
from worq.models import Envelope, TaskMessage, TaskOptions
from worq.pool._leases import LeaseKeeper
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.testing import WAIT, eventually

FaultyPool = Callable[[str | tuple[str, ...], Exception], Path]
"""Starts a pool whose backend's method (the first called of several) raises the error
once; returns the file made then."""


@pytest.fixture(params=["thread", "process", "asyncio"])
def faulty_pool(request: pytest.FixtureRequest, url: str, tmp_path: Path) -> Iterator[FaultyPool]:
    """Starts a one-worker pool (of each kind) running the proc tasks, with one fault.

    The fault is set where the backend call is made: on the thread and
    asyncio pools' broker; on the process pool's broker on memory://, where it feeds its
    worker; in the worker process on Redis, where the worker takes its own
    tasks (through its init function).
    """
    started: list[ThreadPool | ProcessPool | AsyncioPool] = []

    def start(methods: str | tuple[str, ...], error: Exception) -> Path:
        marker = tmp_path / "raised"
        fault = (methods, error, str(marker))
        pool: ThreadPool | ProcessPool | AsyncioPool
        if request.param == "thread":
            pool = ThreadPool(process_tasks.init_failing_once(url, *fault))
            pool.start(timeout=0.05)
        elif request.param == "asyncio":
            pool = AsyncioPool(process_tasks.init_failing_once(url, *fault), concurrency=1)
            pool.start(timeout=0.05)
        elif url.startswith("memory://"):
            broker = process_tasks.init_failing_once(url, *fault)
            pool = ProcessPool(broker, process_tasks.init, workers=1)
            pool.start(timeout=0.2, handle_sigterm=False)
        else:
            init = process_tasks.init_failing_once
            pool = ProcessPool(process_tasks.init(url), init, init_args=fault, workers=1)
            pool.start(timeout=0.2, handle_sigterm=False)
        started.append(pool)
        return marker

    yield start
    for pool in started:
        pool.stop()


def test_taking_thread_survives_an_unexpected_error(url: str, faulty_pool: FaultyPool) -> None:
    """A pool thread or worker whose take raises a non-worq error backs off and goes on."""
    raised = faulty_pool("get", TypeError("a reply nobody expected"))
    eventually(raised.exists, True)
    assert outcome(get_queue(url).proc.add([1, 2])) == 3


def test_storing_error_fails_only_that_task(url: str, faulty_pool: FaultyPool) -> None:
    """An error storing an outcome fails that task with the reason; the next one runs.

    A pool stores it with ``set_result``, or with ``set_result_and_get`` when
    it takes its next task in the same call.
    """
    faulty_pool(
        ("set_result", "set_result_and_get"), OverflowError("cannot convert float infinity")
    )
    q = get_queue(url)
    failed = outcome(q.proc.add([1]))
    assert isinstance(failed, TaskExpired)
    assert failed.error == (
        "the pool failed to handle it: OverflowError: cannot convert float infinity"
    )
    assert outcome(q.proc.add([2, 3])) == 5


def test_retries_cover_a_pool_error(url: str, faulty_pool: FaultyPool) -> None:
    """A task the pool failed to handle is retried when it has retries left."""
    faulty_pool("get_arguments", RuntimeError("backend hiccup"))
    q = get_queue(url)
    res = Task(q.proc.add, retries=1, retry_backoff=0.01)([q.proc.add([1, 1])])
    assert outcome(res) == 2


def test_heartbeat_thread_survives_a_failed_beat(url: str, tmp_path: Path) -> None:
    """One heartbeat raising does not stop the others: a long task keeps its lease."""
    release = threading.Event()

    def slow() -> str:
        release.wait(WAIT)
        return "done"

    broker = get_broker(url, initial_result_timeout=0.3)
    broker.expose(slow)
    raised = tmp_path / "raised"
    process_tasks.fail_once(broker.taskqueue, "renew_lease", OverflowError("infinity"), str(raised))
    pool = ThreadPool(broker)
    pool.start(timeout=0.05)
    try:
        res = Task(get_queue(url).slow, heartrate=0.05)()
        eventually(raised.exists, True)  # the first beat failed
        assert not res.wait(1.0)  # three initial leases pass: later beats kept it alive
        release.set()
        assert outcome(res) == "done"
    finally:
        pool.stop()


def test_heartbeats_are_kept_per_lease() -> None:
    """An old run and its retry, same id, each keep their own heartbeat."""
    broker = get_broker("memory://heartbeat-per-lease")
    beats: list[str] = []
    lock = threading.Lock()

    def renew_lease(task: Envelope) -> None:
        with lock:
            beats.append(task.lease)

    broker.renew_lease = renew_lease  # type: ignore[method-assign]  # records instead of renewing
    options = TaskOptions(heartrate=0.02)
    old = TaskMessage(id="job", name="work", queue="default", options=options, lease="1")
    retry = attrs.evolve(old, lease="2", attempt=2)
    keeper = LeaseKeeper(broker, "test")
    try:
        keeper.add(old)
        keeper.add(retry)
        keeper.remove(old)  # the old run ends while its retry runs
        with lock:
            beats.clear()
        eventually(lambda: beats.count("2") >= 3, True)
        assert "1" not in beats
    finally:
        keeper.close()
