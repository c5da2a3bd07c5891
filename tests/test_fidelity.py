"""WorQ 1.1 behaviours a migrating code base relies on, over every backend and pool."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from structlog.testing import capture_logs

from tests import process_tasks
from tests.outcomes import outcome
from worq import (
    Deferred,
    DuplicateTask,
    Queue,
    Task,
    TaskExpired,
    TaskFailure,
    TaskSpace,
    get_broker,
    get_queue,
)
from worq.core import NOOP_TASK, Broker
from worq.models import TaskMessage
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.testing import WAIT, TimeoutLock, eventually, thread_worker

ts = TaskSpace()
ran: list[Any] = []
"""What the fire-and-forget task below was called with, in the test's process."""


@ts.task
def record(value: Any) -> None:
    ran.append(value)


@ts.task
def func(*args: Any, **kwargs: Any) -> int:
    return len(args)


# -- 1. del q[...] ----------------------------------------------------------


@pytest.mark.parametrize("key", [slice(None, 2), slice(1, None), slice(None, None, 2), 0, "x"])
def test_delitem_needs_a_full_slice(url: str, key: Any) -> None:
    """Any key but [:] is a ValueError with WorQ 1.1's text, and discards nothing."""
    q = get_queue(url)
    q.func(1)
    with pytest.raises(ValueError, match=r"^delitem is only valid with a full slice \(\[:\]\)$"):
        del q[key]
    assert len(q) == 1
    del q[:]
    assert len(q) == 0


# -- 2. and 3. ignore_result as a queue default ----------------------------------


@pytest.fixture
def worker(url: str) -> Iterator[Broker]:
    """A broker exposing this module's tasks, with a worker thread running."""
    broker = get_broker(url)
    broker.expose(ts)
    ran.clear()
    with thread_worker(broker):
        yield broker


def test_fire_and_forget_queue(url: str, worker: Broker) -> None:
    """A queue made with ignore_result=True sends tasks and returns None, at every level."""
    queues: list[Queue[None]] = [
        get_queue(url, ignore_result=True),
        get_broker(url).queue(ignore_result=True),
        Queue(get_broker(url), ignore_result=True),
    ]
    for number, q in enumerate(queues):
        assert q.record(number) is None
        assert q.submit(record, number + 10) is None
    eventually(lambda: sorted(ran), [0, 1, 2, 10, 11, 12])
    fire = queues[0]
    assert Task(fire.record)(20) is None  # a Task inherits the default
    kept = Task(fire.func, ignore_result=False)  # and may turn it off
    assert outcome(kept(1, 2)) == 2
    eventually(lambda: 20 in ran, True)


def test_result_timeout_with_ignore_result_is_refused(url: str) -> None:
    """A fire-and-forget task keeps no result: a result_timeout at any level is a ValueError."""
    q = get_queue(url)
    with pytest.raises(ValueError, match=r"^task 'func' on queue 'default': ignore_result=True"):
        Task(q.func, ignore_result=True, result_timeout=5)
    fire = get_queue(url, ignore_result=True)
    with pytest.raises(ValueError, match=r"result_timeout=5 cannot apply"):
        Task(fire.func, result_timeout=5)
    short = get_queue(url, result_timeout=5)
    with pytest.raises(ValueError, match=r"task 'ns.func' on queue 'default'.*result_timeout=5"):
        Task(short.ns.func, ignore_result=True)
    with pytest.raises(ValueError, match=r"^queue 'default': ignore_result=True keeps no result"):
        get_queue(url, ignore_result=True, result_timeout=5)
    assert len(q) == 0  # nothing was stored
    assert Task(fire.func, ignore_result=False, result_timeout=5).options.result_timeout == 5
    assert Task(short.func).options.result_timeout == 5


# -- 4. BaseException in a task ------------------------------------------------


AnyPool = ThreadPool | ProcessPool | AsyncioPool


def _abort_broker(url: str) -> Broker:
    broker = get_broker(url)
    broker.expose(process_tasks.ts)
    return broker


@pytest.fixture(params=["thread", "process", "asyncio"])
def abort_pool(request: pytest.FixtureRequest, url: str) -> Iterator[AnyPool]:
    """A started one-worker pool of each kind running the proc tasks."""
    pool: AnyPool
    if request.param == "thread":
        pool = ThreadPool(_abort_broker(url))
        pool.start(timeout=0.05)
    elif request.param == "asyncio":
        pool = AsyncioPool(_abort_broker(url), concurrency=1)
        pool.start(timeout=0.05)
    else:
        pool = ProcessPool(process_tasks.init(url), process_tasks.init, workers=1)
        pool.start(timeout=0.2, handle_sigterm=False)
    try:
        yield pool
    finally:
        pool.stop()


@pytest.mark.parametrize("kind", sorted(process_tasks.ABORTS))
def test_base_exception_fails_the_task(url: str, abort_pool: AnyPool, kind: str) -> None:
    """KeyboardInterrupt, SystemExit or any BaseException fails the task; the worker goes on."""
    q = get_queue(url)
    res = q.proc.abort(kind)
    assert res.wait(WAIT)
    message = "stop" if kind == "SystemExit" else ""
    assert repr(res) == f"<Deferred proc.abort [default:{res.id}] failed>"
    with pytest.raises(TaskFailure) as raised:
        res.value  # noqa: B018  # the attribute access is the test
    assert type(raised.value) is TaskFailure
    assert str(raised.value) == f"proc.abort [default:{res.id}] {kind}: {message}"
    after = q.proc.add([1, 2])
    assert outcome(after) == 3
    if not isinstance(abort_pool, ProcessPool):
        assert [type(e).__name__ for e in abort_pool.errors] == [kind]


def test_base_exception_is_retried(url: str, abort_pool: AnyPool, tmp_path: Path) -> None:
    """A task raising KeyboardInterrupt with retries left runs again, like any failure."""
    q = get_queue(url)
    res = Task(q.proc.abort, retries=1, retry_backoff=0.01)(
        "KeyboardInterrupt", str(tmp_path / "m")
    )
    assert outcome(res) == "ran again"


# -- 5. Broker.task_failed(any object with id and name) --------------------------


@attrs.frozen
class Named:
    """Not a worq type: only an id and a name, as the manual allows."""

    id: str
    name: str


def test_task_failed_on_a_running_task(
    url: str,
    abort_pool: AnyPool,
    tmp_path: Path,
) -> None:
    """The waiter gets TaskExpired at once; the run's late outcome is dropped; all goes on.

    Whoever records the outcome logs the drop (``task.lease_lost``): this
    process, except for a process pool on Redis, whose worker process takes
    its own tasks and logs there. Either way nothing of the late run is
    stored: once the pool's one worker has run the next task, the backend
    knows nothing of the expired one (its TaskExpired was taken).
    """
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    q = get_queue(url)
    in_this_process = not isinstance(abort_pool, ProcessPool) or url.startswith("memory://")
    with capture_logs() as logs:
        res = q.proc.read_fifo(str(fifo))
        eventually(lambda: res.status, "processing")
        assert get_broker(url).task_failed(res)
        assert res.wait(WAIT)
        failure = res.outcome()
        assert isinstance(failure, TaskExpired)
        assert failure.error == "the worker running it was lost"
        with fifo.open("w") as pipe:  # the run ends now, with a value nobody may store
            pipe.write("late\n")
        if in_this_process:
            eventually(lambda: any(e["event"] == "task.lease_lost" for e in logs), True)
        assert outcome(q.proc.add([1, 2, 3])) == 6
    assert get_broker(url).status(res) is None
    assert not get_broker(url).task_failed(res)  # finished (and taken): nothing to change


@pytest.mark.parametrize("state", ["enqueued", "pending", "delayed"])
def test_task_failed_before_the_task_runs(url: str, state: str) -> None:
    """A task expired from outside before it ran never runs; its dependants learn it."""
    broker = get_broker(url)
    broker.expose(func)
    q = get_queue(url)
    blocker = Task(q.func, delay=3600)() if state == "pending" else None
    if state == "delayed":
        res = Task(q.func, delay=0.2)(1)
    else:
        res = q.func(blocker) if blocker is not None else q.func(1)
    dependant = Task(q.func, on_error=Task.PASS)(res)
    assert res.status == state
    assert broker.task_failed(Named(res.id, res.name), "cancelled by the test")
    assert len(q) == (1 if blocker is None else 2)  # the dependant (and the blocker) remain
    with thread_worker(broker, timeout=0.05):
        assert outcome(dependant) == 1  # it received the TaskExpired as its argument
        assert outcome(res) == TaskExpired("func", "default", res.id, "cancelled by the test")
    if blocker is not None:
        del q[:]


def test_task_failed_leaves_a_finished_result_alone(url: str, worker: Broker) -> None:
    """Called for a task that already finished, task_failed changes nothing."""
    res = get_queue(url).func(1)
    eventually(lambda: res.status, "completed")
    assert not worker.task_failed(res)
    assert outcome(res) == 1


# -- 6. DuplicateTask ------------------------------------------------------------


def test_duplicate_task_text(url: str) -> None:
    """DuplicateTask carries WorQ 1.1's message."""
    q = get_queue(url)
    Task(q.func, id="same")()
    with pytest.raises(DuplicateTask) as raised:
        Task(q.func, id="same")()
    assert str(raised.value) == "func [default:same] cannot enqueue task with duplicate id"


# -- 7. Deferred.task ----------------------------------------------------------------


def test_deferred_task_holds_the_task_as_sent(url: str, worker: Broker) -> None:
    """res.task has the id, name, args and kwargs the caller passed, Deferreds included."""
    q = get_queue(url)
    first, second = q.func(1), q.func(2)
    res = Task(q.func, retries=2)([first, second], 3, key="k")
    assert (res.task.id, res.task.name) == (res.id, "func")
    assert res.task.args is not None
    assert res.task.kwargs == {"key": "k"}
    assert res.task.args[0][1] is second
    assert res.task.args[0][1].id == second.id
    assert res.task.options is not None
    assert res.task.options.retries == 2
    rebuilt = Deferred(get_broker(url), res.id, res.name)
    assert (rebuilt.task.id, rebuilt.task.name, rebuilt.task.args) == (res.id, "func", None)
    from_object = Deferred(get_broker(url), Named(first.id, first.name))
    assert (from_object.id, from_object.name, from_object.task.kwargs) == (first.id, "func", None)
    assert outcome(rebuilt) == 2
    with pytest.raises(ValueError, match=r"needs the task's name too"):
        Deferred(get_broker(url), res.id)  # type: ignore[call-overload]  # the mistake under test


# -- 8. len(q) -------------------------------------------------------------------


def test_len_counts_tasks_waiting_on_arguments(url: str) -> None:
    """len(q) counts every task not yet started, deferred ones included, as WorQ 1.1."""
    broker = get_broker(url)
    broker.expose(func)
    q = get_queue(url)
    r1 = q.func()
    r2 = q.func(r1)
    assert len(q) == 2
    first = broker.next_task(WAIT)
    assert first is not None
    assert first.id == r1.id
    assert len(q) == 1
    broker.invoke(first)
    assert len(q) == 1  # r2 is runnable now
    second = broker.next_task(WAIT)
    assert second is not None
    assert second.id == r2.id
    assert len(q) == 0
    broker.invoke(second)
    assert outcome(r2) == 1


def test_clearing_drops_deferred_tasks_too(url: str) -> None:
    """del q[:] discards tasks waiting on arguments, so len(q) is 0 after it."""
    q = get_queue(url)
    running = q.func()
    waiting = q.func(running)
    broker = get_broker(url)
    assert broker.next_task(WAIT) is not None  # running is taken, waiting still pending
    assert len(q) == 1
    del q[:]
    assert len(q) == 0
    assert waiting.status is None


# -- 9. the thread pool takes tasks through broker.next_task ---------------------------


def _wrap_next_task(broker: Broker, seen: list[str]) -> None:
    """Replace next_task on the broker instance, as WorQ 1.1 test helpers do."""
    original: Callable[[float | None], TaskMessage | None] = broker.next_task

    def next_task(timeout: float | None = None) -> TaskMessage | None:
        task = original(timeout)
        if task is not None and task.name != NOOP_TASK:  # not the pool's stop sentinel
            seen.append(task.id)
        return task

    broker.next_task = next_task  # type: ignore[method-assign]  # what such helpers do


@pytest.mark.parametrize("gated", [False, True])
def test_thread_pool_takes_every_task_through_next_task(url: str, gated: bool) -> None:
    """A next_task replaced on the broker instance sees every task, with or without a lock."""
    broker = get_broker(url)
    broker.expose(func)
    seen: list[str] = []
    _wrap_next_task(broker, seen)
    lock = TimeoutLock(locked=True) if gated else None
    q = get_queue(url)
    with thread_worker(broker, lock):
        sent = [q.func(), q.func(q.func()), Task(q.func, retries=1)()]
        for _ in range(4 if gated else 0):  # one task per release
            assert lock is not None
            eventually(lock.locked, True)  # the worker took the previous permit
            lock.release()
        assert [outcome(res) for res in sent] == [0, 1, 0]
    ids = {res.id for res in sent} | {res.task.args[0].id for res in sent[1:2] if res.task.args}
    assert sorted(seen) == sorted(ids)
