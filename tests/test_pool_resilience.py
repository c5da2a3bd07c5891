"""Pool threads outlive whatever a backend call raises, and keep each run's lease apart."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from tests import process_tasks
from tests.outcomes import outcome
from worq import Task, TaskExpired, get_broker, get_queue
from worq.core import Broker
from worq.models import Envelope, TaskMessage, TaskOptions
from worq.pool._leases import LeaseKeeper
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.testing import WAIT, eventually


def fail_once(obj: Any, method: str, error: Exception) -> list[Exception]:
    """Make ``obj.method`` raise ``error`` on its next call only; returns what was raised."""
    original: Callable[..., Any] = getattr(obj, method)
    raised: list[Exception] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if not raised:
            raised.append(error)
            raise error
        return original(*args, **kwargs)

    setattr(obj, method, flaky)
    return raised


@pytest.fixture(params=["thread", "process"])
def pool_broker(request: pytest.FixtureRequest, url: str) -> Iterator[Broker]:
    """The broker of a started one-worker pool (of each kind) running the proc tasks.

    Faults are injected on it after start, in this (the pool's) process.
    """
    broker = process_tasks.init(url)
    pool: ThreadPool | ProcessPool
    if request.param == "thread":
        pool = ThreadPool(broker)
        pool.start(timeout=0.05)
    else:
        pool = ProcessPool(broker, process_tasks.init, workers=1)
        pool.start(timeout=0.2, handle_sigterm=False)
    try:
        yield broker
    finally:
        pool.stop()


def test_taking_thread_survives_an_unexpected_error(url: str, pool_broker: Broker) -> None:
    """A worker or feeder thread whose take raises a non-worq error backs off and goes on."""
    raised = fail_once(pool_broker.taskqueue, "get", TypeError("a reply nobody expected"))
    eventually(lambda: bool(raised), True)
    assert outcome(get_queue(url).proc.add([1, 2])) == 3


def test_storing_error_fails_only_that_task(url: str, pool_broker: Broker) -> None:
    """An error storing an outcome fails that task with the reason; the next one runs."""
    fail_once(pool_broker.taskqueue, "set_result", OverflowError("cannot convert float infinity"))
    q = get_queue(url)
    failed = outcome(q.proc.add([1]))
    assert isinstance(failed, TaskExpired)
    assert failed.error == (
        "the pool failed to handle it: OverflowError: cannot convert float infinity"
    )
    assert outcome(q.proc.add([2, 3])) == 5


def test_retries_cover_a_pool_error(url: str, pool_broker: Broker) -> None:
    """A task the pool failed to handle is retried when it has retries left."""
    fail_once(pool_broker.taskqueue, "get_arguments", RuntimeError("backend hiccup"))
    q = get_queue(url)
    res = Task(q.proc.add, retries=1, retry_backoff=0.01)([q.proc.add([1, 1])])
    assert outcome(res) == 2


def test_heartbeat_thread_survives_a_failed_beat(url: str) -> None:
    """One heartbeat raising does not stop the others: a long task keeps its lease."""
    release = threading.Event()

    def slow() -> str:
        release.wait(WAIT)
        return "done"

    broker = get_broker(url, initial_result_timeout=0.3)
    broker.expose(slow)
    raised = fail_once(broker.taskqueue, "renew_lease", OverflowError("infinity"))
    pool = ThreadPool(broker)
    pool.start(timeout=0.05)
    try:
        res = Task(get_queue(url).slow, heartrate=0.05)()
        eventually(lambda: bool(raised), True)  # the first beat failed
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
