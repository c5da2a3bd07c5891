"""The asyncio pool: many tasks at once on one event loop, with every guarantee of the others.

And ``async def`` tasks in the thread and process pools, each worker
running them on an event loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests import process_tasks
from tests.outcomes import outcome
from worq import (
    BackendUnavailable,
    Task,
    TaskExpired,
    TaskFailure,
    TaskSpace,
    get_broker,
    get_queue,
)
from worq.core import Broker
from worq.pool.asyncio import WorkerPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.testing import WAIT, eventually

ts = TaskSpace("aio")


class Gate:
    """Holds coroutines (on whatever loop they run) until the test opens it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.arrived: list[int] = []
        """The thread each coroutine waiting here ran on, in the order they came."""

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self.arrived.append(threading.get_ident())
            if self._open:
                return
            self._waiters.append((loop, future))
        await asyncio.wait_for(future, WAIT)

    def open(self) -> None:
        with self._lock:
            self._open = True
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(future.set_result, None)

    def count(self) -> int:
        with self._lock:
            return len(self.arrived)


GATE = Gate()
RELEASE = threading.Event()
"""Lets the blocking sync tasks go on."""
RUNS: list[str] = []
"""What the tasks saw, for the tests to check."""


@ts.task
async def gated(number: int) -> int:
    await GATE.wait()
    return number


@ts.task
def blocking(number: int) -> int:
    RELEASE.wait(WAIT)
    return number


@ts.task
async def doubled(number: int) -> int:
    await asyncio.sleep(0)
    return 2 * number


@ts.task
async def endless() -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        RUNS.append("cancelled")
        raise


@ts.task
async def hogging(seconds: float) -> str:
    time.sleep(seconds)  # the defect the pool reports: a blocking call in a coroutine
    return "done"


@ts.task
async def flaky() -> str:
    RUNS.append("run")
    if len(RUNS) == 1:
        raise ConnectionError("first run")
    return "second run"


@ts.task
async def exiting() -> None:
    raise SystemExit("from a coroutine")


@ts.task
async def cancels_itself() -> None:
    inner = asyncio.ensure_future(asyncio.sleep(3600))
    inner.cancel()
    await inner


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    global GATE
    GATE = Gate()
    RELEASE.clear()
    RUNS.clear()
    yield
    GATE.open()
    RELEASE.set()


StartPool = Callable[..., WorkerPool]


@pytest.fixture
def start_pool(url: str) -> Iterator[StartPool]:
    """Starts an asyncio pool running the aio tasks; stops it after the test."""
    started: list[WorkerPool] = []

    def start(broker: Broker | None = None, **options: Any) -> WorkerPool:
        if broker is None:
            broker = get_broker(url)
        broker.expose(ts)
        pool = WorkerPool(broker, **options)
        pool.start(timeout=0.1)
        started.append(pool)
        return pool

    yield start
    GATE.open()
    RELEASE.set()
    for pool in started:
        pool.stop()


def test_async_tasks_run_at_once_on_one_loop(url: str, start_pool: StartPool) -> None:
    """Twenty coroutines wait at the gate together, all on the pool's one loop thread."""
    start_pool(concurrency=20)
    q = get_queue(url)
    results = [q.submit(gated, number) for number in range(20)]
    eventually(GATE.count, 20)
    assert len(set(GATE.arrived)) == 1
    assert GATE.arrived[0] != threading.get_ident()
    GATE.open()
    assert [outcome(result) for result in results] == list(range(20))


def test_concurrency_bounds_the_tasks_taken(url: str, start_pool: StartPool) -> None:
    """With concurrency 3, two of five tasks stay enqueued while three run."""
    start_pool(concurrency=3)
    q = get_queue(url)
    results = [q.submit(gated, number) for number in range(5)]
    eventually(GATE.count, 3)
    statuses = sorted(str(result.status) for result in results)
    assert statuses == ["enqueued", "enqueued", "processing", "processing", "processing"]
    assert len(q) == 2
    GATE.open()
    assert [outcome(result) for result in results] == list(range(5))


def test_sync_tasks_run_in_threads_and_never_block_the_loop(
    url: str, start_pool: StartPool
) -> None:
    """While two sync tasks block their threads, a coroutine task runs to its end."""
    start_pool(concurrency=10, threads=2)
    q = get_queue(url)
    stuck = [q.submit(blocking, number) for number in range(2)]
    eventually(lambda: [str(result.status) for result in stuck], ["processing"] * 2)
    assert outcome(q.submit(doubled, 21)) == 42
    RELEASE.set()
    assert [outcome(result) for result in stuck] == [0, 1]


def test_a_coroutine_past_its_time_limit_is_cancelled_and_may_retry(
    url: str, start_pool: StartPool
) -> None:
    start_pool()
    q = get_queue(url)
    with capture_logs() as logs:
        failed = outcome(Task(q.aio.endless, time_limit=0.2, retries=1, retry_backoff=0.01)())
    assert isinstance(failed, TaskFailure)
    assert failed.error == "time limit of 0.2s exceeded: its coroutine was cancelled"
    assert RUNS == ["cancelled", "cancelled"]
    events = [e["event"] for e in logs if e.get("task_id") == failed.task_id]
    assert events.count("task.time_limit_exceeded") == 2
    assert events.count("task.retrying") == 1


def test_a_sync_task_past_its_time_limit_fails_at_once(url: str, start_pool: StartPool) -> None:
    """Its thread cannot be stopped: the task fails now, without a retry."""
    start_pool()
    q = get_queue(url)
    failed = outcome(Task(q.aio.blocking, time_limit=0.2, retries=1)(7))
    assert isinstance(failed, TaskFailure)
    assert failed.error.startswith("time limit of 0.2s exceeded (its thread cannot be stopped")


def test_a_coroutine_blocking_the_loop_is_reported(url: str, start_pool: StartPool) -> None:
    start_pool(blocked_loop_after=0.05)
    q = get_queue(url)
    with capture_logs() as logs:
        hog = q.submit(hogging, 0.15)
        assert outcome(hog) == "done"
        assert outcome(q.submit(doubled, 1)) == 2
    blocked = [e for e in logs if e["event"] == "task.blocked_loop"]
    assert [(e["task_id"], e["task_name"]) for e in blocked] == [(hog.id, "aio.hogging")]
    assert blocked[0]["duration_s"] >= 0.15
    assert blocked[0]["threshold_s"] == 0.05


def test_async_task_is_retried_with_the_events_of_every_pool(
    url: str, start_pool: StartPool
) -> None:
    start_pool()
    q = get_queue(url, retries=1, retry_backoff=0.01)
    with capture_logs() as logs:
        result = q.submit(flaky)
        assert outcome(result) == "second run"
    events = [(e["event"], e.get("attempt")) for e in logs if e.get("task_id") == result.id]
    assert ("task.enqueued", None) in events  # logged by the client, maybe after the start
    events.remove(("task.enqueued", None))
    assert events == [
        ("task.started", 1),
        ("task.raised", None),
        ("task.failed", 1),
        ("task.retrying", 1),
        ("task.started", 2),
        ("task.succeeded", 2),
    ]


def test_stop_drains_the_running_tasks_and_takes_no_more(url: str, start_pool: StartPool) -> None:
    pool = start_pool()
    q = get_queue(url)
    running = q.submit(gated, 1)
    eventually(GATE.count, 1)
    with capture_logs() as logs:
        pool.stop(join=False)
        assert running.status == "processing"
        GATE.open()
        pool.join()
    assert outcome(running) == 1
    assert q.submit(doubled, 2).status == "enqueued"
    assert [e["event"] for e in logs if e["event"].startswith("pool.")] == ["pool.stopped"]


def test_leases_of_running_coroutines_are_renewed(url: str, start_pool: StartPool) -> None:
    """A coroutine running well past its initial lease keeps it, by heartbeats."""
    broker = get_broker(url, initial_result_timeout=0.3)
    beats: list[str] = []
    renew = broker.renew_lease

    def counted(task: Any) -> None:
        beats.append(task.id)
        renew(task)

    broker.renew_lease = counted  # type: ignore[method-assign]  # counts the pool's heartbeats
    start_pool(broker)
    result = Task(get_queue(url).aio.gated, heartrate=0.1)(5)
    eventually(lambda: len(beats) >= 5, True)
    assert result.status == "processing"
    GATE.open()
    assert outcome(result) == 5


def test_a_base_exception_fails_its_task_and_the_pool_goes_on(
    url: str, start_pool: StartPool
) -> None:
    pool = start_pool()
    q = get_queue(url)
    failed = outcome(q.submit(exiting))
    assert isinstance(failed, TaskFailure)
    assert failed.error == "SystemExit: from a coroutine"
    assert [type(e).__name__ for e in pool.errors] == ["SystemExit"]
    assert outcome(q.submit(doubled, 4)) == 8


def test_a_task_whose_own_await_was_cancelled_fails(url: str, start_pool: StartPool) -> None:
    """A CancelledError the task itself brought on is its failure, not the pool's stop."""
    start_pool()
    failed = outcome(get_queue(url).submit(cancels_itself))
    assert isinstance(failed, TaskFailure)
    assert failed.error.startswith("CancelledError")
    assert outcome(get_queue(url).submit(doubled, 3)) == 6


@pytest.mark.parametrize(
    "options",
    [{"concurrency": 0}, {"concurrency": 1.5}, {"threads": 0}, {"blocked_loop_after": 0}],
)
def test_bad_pool_options_are_refused(options: dict[str, Any]) -> None:
    name = next(iter(options))
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        WorkerPool(get_broker("memory://aio-options"), **options)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_other_pools_run_async_tasks_on_a_loop_per_worker(url: str, kind: str) -> None:
    """Each worker keeps one loop for every coroutine it runs."""
    pool: ThreadPool | ProcessPool
    if kind == "thread":
        pool = ThreadPool(process_tasks.init(url), workers=1)
        pool.start(timeout=0.1)
    else:
        pool = ProcessPool(process_tasks.init(url), process_tasks.init, workers=1)
        pool.start(timeout=0.2, handle_sigterm=False)
    try:
        q = get_queue(url)
        assert outcome(q.submit(process_tasks.async_add, [1, 2, 3])) == 6
        first, second = (outcome(q.submit(process_tasks.where_it_runs)) for _ in range(2))
        assert first == second
        assert first[1] != threading.get_ident()
    finally:
        pool.stop()


def test_an_async_task_invoked_from_a_running_loop_fails_saying_why() -> None:
    """Broker.invoke inside async code cannot run a coroutine to its end: the task says so."""
    url = "memory://aio-invoke"
    broker = get_broker(url)
    broker.expose(ts)
    result = get_queue(url).submit(doubled, 1)

    async def invoke() -> None:
        task = broker.next_task(0)
        assert task is not None
        broker.invoke(task)

    asyncio.run(invoke())
    failed = outcome(result)
    assert isinstance(failed, TaskFailure)
    assert failed.error == (
        "RuntimeError: an async task cannot run in a thread that already runs an event loop: "
        "run it in a worker pool (worq.pool.asyncio runs it on its own loop)"
    )


def test_a_task_taken_with_an_outcome_that_cannot_be_opened_is_settled(
    url: str, start_pool: StartPool
) -> None:
    """The recorder outlives a failure opening the task it took with an outcome;
    that task's lease lapses, a reaper settles it, and the pool goes on."""
    broker = get_broker(url, initial_result_timeout=0.3)
    target: list[str] = []
    decode = broker.decode_taken

    def failing(envelope: Any, payload: bytes) -> Any:
        if envelope.id in target:
            target.clear()
            raise BackendUnavailable("the backend went away as the task was opened")
        return decode(envelope, payload)

    broker.decode_taken = failing  # type: ignore[method-assign]  # the fault under test
    start_pool(broker, concurrency=1)
    q = get_queue(url)
    first = q.submit(gated, 1)
    eventually(GATE.count, 1)
    second = q.submit(doubled, 2)
    target.append(second.id)
    with capture_logs() as logs:
        GATE.open()
        assert outcome(first) == 1
        lost = outcome(second)
    assert isinstance(lost, TaskExpired)
    assert "its lease lapsed" in lost.error
    assert [e["task_id"] for e in logs if e["event"] == "task.outcome_unrecorded"] == [second.id]
    assert outcome(q.submit(doubled, 3)) == 6
