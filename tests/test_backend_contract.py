"""The TaskQueue contract (worq.typing.TaskQueue), run against every backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import backend_url
from worq._backends import make_taskqueue
from worq.const import TaskStatus
from worq.testing import WAIT, eventually
from worq.typing import DeferResult, Taken, TaskQueue

SHORT = 0.05
"""A timeout short enough to keep tests fast; long enough to be measurable."""


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def url(request: pytest.FixtureRequest) -> str:
    """A URL of an empty backend: the suite's two, and a real Redis Cluster as a third."""
    return backend_url(request, request.param)


@pytest.fixture
def tq(url: str) -> Iterator[TaskQueue]:
    """A fresh backend queue named 'default', closed after the test."""
    queue = make_taskqueue(url)
    yield queue
    queue.close()


def enqueue(
    tq: TaskQueue,
    task_id: str,
    *,
    keep: bool = True,
    track: bool | None = None,
    delay: float = 0,
) -> bool:
    """Enqueue ``task_id`` with message ``task_id.upper()``; tracked iff kept, by default."""
    return tq.enqueue_task(
        task_id,
        task_id.upper().encode(),
        keep_result=keep,
        track=keep if track is None else track,
        delay=delay,
    )


def take(tq: TaskQueue) -> Taken:
    """Take the next task, failing the test if none arrives in time."""
    taken = tq.get(5)
    assert taken is not None, "no task arrived"
    return taken


def lapse(tq: TaskQueue, task_id: str) -> Taken:
    """Take ``task_id`` and let its lease lapse at once."""
    taken = take(tq)
    assert taken.task_id == task_id
    assert tq.renew_lease(task_id, SHORT / 5, taken.lease)
    eventually(lambda: tq.get_status(task_id), TaskStatus.LAPSED)
    return taken


def test_enqueue_get_fifo_and_size(tq: TaskQueue) -> None:
    """Tasks come out in the order they went in; size counts the waiting ones."""
    assert enqueue(tq, "a")
    assert enqueue(tq, "b")
    assert tq.size() == 2
    first, second = take(tq), take(tq)
    assert (first.task_id, first.message, first.attempt) == ("a", b"A", 1)
    assert (second.task_id, second.message) == ("b", b"B")
    assert first.lease != ""
    assert tq.size() == 0


def test_duplicate_id_is_refused(tq: TaskQueue) -> None:
    """enqueue_task returns False and stores nothing for a known id."""
    assert enqueue(tq, "a")
    assert not tq.enqueue_task("a", b"other", keep_result=True, track=True)
    assert tq.size() == 1


def test_get_times_out(tq: TaskQueue) -> None:
    """get returns None once its timeout has passed without a task."""
    started = time.monotonic()
    assert tq.get(SHORT) is None
    assert time.monotonic() - started >= SHORT * 0.9


def test_get_wakes_on_enqueue(tq: TaskQueue) -> None:
    """A blocked get returns as soon as a task is enqueued from another thread."""
    got: list[Taken | None] = []
    waiter = threading.Thread(target=lambda: got.append(tq.get(10)))
    waiter.start()
    enqueue(tq, "a")
    waiter.join(10)
    assert [t.task_id if t else None for t in got] == ["a"]


def test_set_result_and_get_finishes_then_takes_the_next(tq: TaskQueue) -> None:
    """One call stores the result under the lease and leases the next task, if any."""
    assert enqueue(tq, "a")
    assert enqueue(tq, "b")
    a = take(tq)
    stored, b = tq.set_result_and_get("a", b"RA", 60, a.lease)
    assert stored
    assert b is not None
    assert (b.task_id, b.message, b.attempt) == ("b", b"B", 1)
    assert tq.get_status("b") is TaskStatus.PROCESSING
    assert tq.renew_lease("b", 60, b.lease)  # the caller holds the new lease
    assert tq.pop_result("a", 0) == b"RA"
    assert tq.set_result_and_get("b", b"RB", 60, b.lease) == (True, None)  # none left
    assert tq.pop_result("b", 0) == b"RB"


def test_set_result_and_get_under_a_lost_lease_still_takes(tq: TaskQueue) -> None:
    """A late outcome is dropped (False), and the next task is taken all the same."""
    assert enqueue(tq, "a")
    stale = lapse(tq, "a")
    (reclaimed,) = tq.reclaim(10)
    assert enqueue(tq, "b")
    stored, b = tq.set_result_and_get("a", b"late", 60, stale.lease)
    assert not stored
    assert b is not None
    assert b.task_id == "b"
    assert tq.set_result("a", b"RA", 60, reclaimed.lease)
    assert tq.pop_result("a", 0) == b"RA"


def test_set_result_and_get_waits_for_a_task_sent_meanwhile(tq: TaskQueue) -> None:
    """With a wait, the outcome is stored first, then a task sent during the wait is
    taken by that same call."""
    assert enqueue(tq, "a")
    a = take(tq)
    got: list[tuple[bool, Taken | None]] = []
    finisher = threading.Thread(
        target=lambda: got.append(tq.set_result_and_get("a", b"RA", 60, a.lease, WAIT))
    )
    finisher.start()
    eventually(lambda: tq.get_status("a"), TaskStatus.COMPLETED)  # stored, now waiting
    assert enqueue(tq, "b")
    finisher.join(WAIT)
    assert [(stored, b.task_id if b else None) for stored, b in got] == [(True, "b")]
    assert tq.get_status("b") is TaskStatus.PROCESSING
    assert tq.pop_result("a", 0) == b"RA"


def test_set_result_and_get_waits_no_longer_than_asked(tq: TaskQueue) -> None:
    """With a wait and nothing sent, the outcome is stored and no task is taken; a task
    sent afterwards waits in the queue for the next take."""
    assert enqueue(tq, "a")
    a = take(tq)
    assert tq.set_result_and_get("a", b"RA", 60, a.lease, SHORT) == (True, None)
    assert tq.pop_result("a", 0) == b"RA"
    assert enqueue(tq, "b")
    assert tq.size() == 1
    assert take(tq).task_id == "b"


def test_status_lifecycle(tq: TaskQueue) -> None:
    """enqueued → processing → completed → (popped) unknown."""
    enqueue(tq, "a")
    assert tq.get_status("a") == TaskStatus.ENQUEUED
    taken = take(tq)
    assert tq.get_status("a") == TaskStatus.PROCESSING
    assert tq.set_result("a", b"result", 60, taken.lease)
    assert tq.get_status("a") == TaskStatus.COMPLETED
    assert tq.pop_result("a", 0) == b"result"
    assert tq.get_status("a") is None
    assert tq.pop_result("a", 0) is TaskStatus.EXPIRED


def test_pop_result_not_ready_and_unknown(tq: TaskQueue) -> None:
    """pop_result: None while the task is not done; EXPIRED for an unknown task."""
    enqueue(tq, "a")
    assert tq.pop_result("a", 0) is None
    assert tq.pop_result("a", SHORT) is None
    assert tq.pop_result("nope", 0) is TaskStatus.EXPIRED


def test_pop_result_wakes_on_set_result(tq: TaskQueue) -> None:
    """A blocked pop_result returns as soon as the result is stored."""
    enqueue(tq, "a")
    taken = take(tq)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(tq.pop_result("a", 10)))
    waiter.start()
    tq.set_result("a", b"R", 60, taken.lease)
    waiter.join(10)
    assert got == [b"R"]


def test_untracked_task_is_forgotten_once_taken(tq: TaskQueue) -> None:
    """Fire and forget without retries: no lease, nothing kept after get."""
    enqueue(tq, "a", keep=False)
    assert tq.get_status("a") == TaskStatus.ENQUEUED
    taken = take(tq)
    assert taken.lease == ""
    assert tq.get_status("a") is None
    assert enqueue(tq, "a", keep=False)


def test_tracked_fire_and_forget_stays_until_finished(tq: TaskQueue) -> None:
    """A tracked task without a result is held under a lease; set_result forgets it."""
    enqueue(tq, "a", keep=False, track=True)
    taken = take(tq)
    assert tq.get_status("a") == TaskStatus.PROCESSING
    assert tq.set_result("a", b"ignored", 60, taken.lease)
    assert tq.get_status("a") is None
    assert tq.pop_result("a", 0) is TaskStatus.EXPIRED


def test_defer_on_completed_argument_enqueues_at_once(tq: TaskQueue) -> None:
    """A task whose arguments are all done is queued straight away, with them."""
    enqueue(tq, "arg")
    tq.set_result("arg", b"42", 60, take(tq).lease)
    assert tq.defer_task("t", b"T", ["arg"], keep_result=True) is DeferResult.STORED
    assert tq.get_status("t") == TaskStatus.ENQUEUED
    assert take(tq).task_id == "t"
    assert tq.get_arguments("t") == {"arg": b"42"}


def test_defer_waits_for_every_argument(tq: TaskQueue) -> None:
    """A task stays pending until the last argument's result is set."""
    for arg in ("x", "y"):
        enqueue(tq, arg)
    assert tq.defer_task("t", b"T", ["x", "y"], keep_result=True) is DeferResult.STORED
    assert tq.get_status("t") == TaskStatus.PENDING
    x, y = take(tq), take(tq)
    tq.set_result("x", b"1", 60, x.lease)
    assert tq.get_status("t") == TaskStatus.PENDING
    assert tq.size() == 1  # not started: it counts until a worker takes it
    tq.set_result("y", b"2", 60, y.lease)
    assert tq.get_status("t") == TaskStatus.ENQUEUED
    taken = take(tq)
    assert (taken.task_id, taken.message) == ("t", b"T")
    assert tq.get_arguments("t") == {"x": b"1", "y": b"2"}


def test_one_result_feeds_several_dependants(tq: TaskQueue) -> None:
    """Every task waiting on a result receives it, and the waiter can still pop it."""
    enqueue(tq, "arg")
    tq.defer_task("t1", b"T1", ["arg"], keep_result=True)
    tq.defer_task("t2", b"T2", ["arg"], keep_result=False)
    tq.set_result("arg", b"7", 60, take(tq).lease)
    assert {take(tq).task_id, take(tq).task_id} == {"t1", "t2"}
    assert tq.get_arguments("t1") == {"arg": b"7"}
    assert tq.get_arguments("t2") == {"arg": b"7"}
    assert tq.pop_result("arg", 0) == b"7"


def test_defer_refusals(tq: TaskQueue) -> None:
    """Unknown or result-less arguments, and duplicate ids, store nothing."""
    enqueue(tq, "fire", keep=False)
    enqueue(tq, "kept")
    assert tq.defer_task("t", b"T", ["nope"], keep_result=True) is DeferResult.MISSING_ARGUMENT
    assert tq.defer_task("t", b"T", ["fire"], keep_result=True) is DeferResult.MISSING_ARGUMENT
    assert tq.defer_task("kept", b"T", ["fire"], keep_result=True) is DeferResult.DUPLICATE
    assert tq.get_status("t") is None
    assert tq.size() == 2


def test_lapsed_lease_is_reclaimed_once_and_fences_the_old_holder(tq: TaskQueue) -> None:
    """A lapsed task is handed to one reclaimer; the old lease can no longer finish it."""
    enqueue(tq, "a")
    old = lapse(tq, "a")
    assert tq.pop_result("a", 5) is TaskStatus.LAPSED
    new = tq.reclaim_task("a")
    assert new is not None
    assert (new.task_id, new.message, new.attempt) == ("a", b"A", 1)
    assert new.lease != old.lease
    assert tq.reclaim_task("a") is None
    assert tq.reclaim(10) == []
    assert tq.get_status("a") == TaskStatus.PROCESSING
    assert not tq.set_result("a", b"late", 60, old.lease)
    assert not tq.renew_lease("a", 60, old.lease)
    assert not tq.retry_task("a", old.lease, 0)
    assert tq.set_result("a", b"settled", 60, new.lease)
    assert tq.pop_result("a", 0) == b"settled"


def test_concurrent_reclaimers_split_the_lapsed_tasks(tq: TaskQueue) -> None:
    """Racing reclaimers each get distinct tasks, and together get every lapsed one."""
    ids = [f"t{n}" for n in range(20)]
    for task_id in ids:
        enqueue(tq, task_id)
    for task_id in ids:
        tq.renew_lease(task_id, SHORT / 5, take(tq).lease)
    eventually(lambda: {tq.get_status(i) for i in ids}, {TaskStatus.LAPSED})
    got: list[Taken] = []
    racers = [threading.Thread(target=lambda: got.extend(tq.reclaim(7))) for _ in range(6)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(10)
    assert sorted(t.task_id for t in got) == sorted(ids)


def test_heartbeat_renews_the_lease(tq: TaskQueue) -> None:
    """renew_lease (a heartbeat) keeps a taken task running past its previous deadline."""
    enqueue(tq, "a")
    taken = take(tq)
    assert tq.renew_lease("a", SHORT, taken.lease)
    assert tq.renew_lease("a", 60, taken.lease)
    assert tq.pop_result("a", SHORT * 3) is None
    assert tq.get_status("a") == TaskStatus.PROCESSING
    assert not tq.renew_lease("a", 60, "not-the-lease")


def test_retry_requeues_with_a_delay_and_counts_attempts(tq: TaskQueue) -> None:
    """retry_task queues the task again after its delay; the next run is attempt 2."""
    enqueue(tq, "a")
    first = take(tq)
    assert tq.retry_task("a", first.lease, SHORT * 4)
    assert tq.get_status("a") == TaskStatus.DELAYED
    assert tq.get(0) is None
    second = take(tq)
    assert (second.task_id, second.attempt) == ("a", 2)
    assert not tq.retry_task("a", first.lease, 0)


def test_delayed_task_runs_when_due(tq: TaskQueue) -> None:
    """A delayed task waits, counted in size, and a blocked get wakes when it is due."""
    enqueue(tq, "later", delay=SHORT * 4)
    assert tq.get_status("later") == TaskStatus.DELAYED
    assert tq.size() == 1
    started = time.monotonic()
    assert take(tq).task_id == "later"
    assert time.monotonic() - started >= SHORT * 3


def test_lapse_of_an_argument_leaves_dependants_waiting(tq: TaskQueue) -> None:
    """Pending tasks do not lapse; they run once the reclaimed argument is settled."""
    enqueue(tq, "arg")
    tq.defer_task("t", b"T", ["arg"], keep_result=True)
    lapse(tq, "arg")
    assert tq.get_status("t") == TaskStatus.PENDING
    reclaimed = tq.reclaim(10)
    assert [r.task_id for r in reclaimed] == ["arg"]
    tq.set_result("arg", b"expired", 60, reclaimed[0].lease)
    assert take(tq).task_id == "t"
    assert tq.get_arguments("t") == {"arg": b"expired"}


def test_result_expires_after_timeout(tq: TaskQueue) -> None:
    """A stored result nobody takes is dropped after its timeout."""
    enqueue(tq, "a")
    tq.set_result("a", b"R", SHORT, take(tq).lease)
    eventually(lambda: tq.get_status("a"), None)


def test_discard_pending(tq: TaskQueue) -> None:
    """discard_pending drops waiting tasks (queued or delayed), not running ones."""
    enqueue(tq, "run")
    take(tq)
    enqueue(tq, "a")
    enqueue(tq, "b", keep=False)
    enqueue(tq, "c", delay=60)
    assert tq.discard_pending() == 3
    assert tq.size() == 0
    assert tq.pop_result("a", 0) is TaskStatus.EXPIRED
    assert tq.get_status("c") is None
    assert tq.get_status("run") == TaskStatus.PROCESSING
    assert tq.get(SHORT) is None


def test_named_queues_are_separate(url: str) -> None:
    """Two queue names on one backend never see each other's tasks."""
    foo, bar = make_taskqueue(url, "foo"), make_taskqueue(url, "bar")
    enqueue(foo, "a")
    assert bar.size() == 0
    assert bar.get(SHORT) is None
    assert bar.get_status("a") is None
    assert enqueue(bar, "a")
    assert take(foo).task_id == "a"


def test_waiter_sees_a_lapse_that_starts_after_it_waits(tq: TaskQueue) -> None:
    """A waiter blocked before the task was taken still sees its lease lapse promptly."""
    enqueue(tq, "a")
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(tq.pop_result("a", 10)))
    waiter.start()
    tq.renew_lease("a", SHORT, take(tq).lease)
    waiter.join(10)
    assert got == [TaskStatus.LAPSED]


def test_blocked_worker_wakes_for_a_task_delayed_after_it_blocked(tq: TaskQueue) -> None:
    """A worker already waiting runs a task delayed afterwards when it is due, not later."""
    got: list[tuple[Taken | None, float]] = []

    def wait() -> None:
        taken = tq.get(10)
        got.append((taken, time.monotonic()))

    waiter = threading.Thread(target=wait)
    waiter.start()
    sent = time.monotonic()
    enqueue(tq, "later", delay=SHORT * 4)
    waiter.join(10)
    [(taken, when)] = got
    assert taken is not None
    assert taken.task_id == "later"
    assert SHORT * 3 <= when - sent < 5


def test_finished_delayed_task_is_not_disturbed_by_its_wake_up_call(tq: TaskQueue) -> None:
    """Whatever a delayed task left in the queue to wake workers cannot touch its result."""
    enqueue(tq, "a", delay=SHORT)
    taken = take(tq)
    assert tq.set_result("a", b"done", 60, taken.lease)
    assert tq.get(SHORT) is None
    assert tq.size() == 0
    assert tq.pop_result("a", 0) == b"done"


def test_set_result_without_a_lease_finishes_from_outside(tq: TaskQueue) -> None:
    """Without a lease a task is finished whatever its state; unknown or finished ones are not."""
    assert not tq.set_result("ghost", b"X", 60)
    enqueue(tq, "queued")
    enqueue(tq, "later", delay=60)
    enqueue(tq, "running")
    assert tq.defer_task("waiting", b"W", ["running"], keep_result=True) is DeferResult.STORED
    assert tq.size() == 4
    assert tq.set_result("queued", b"Q", 60)
    assert tq.set_result("later", b"L", 60)
    assert tq.size() == 2  # running (not yet taken) and waiting
    running = take(tq)
    assert running.task_id == "running"
    assert tq.set_result("running", b"R", 60)  # from outside: the run loses its lease
    assert not tq.set_result("running", b"late", 60, running.lease)
    assert not tq.renew_lease("running", 60, running.lease)
    assert not tq.set_result("running", b"again", 60)  # finished: left alone
    assert tq.get_status("waiting") == TaskStatus.ENQUEUED  # it was handed R
    assert tq.set_result("waiting", b"W!", 60)
    assert tq.size() == 0
    assert tq.get(SHORT) is None  # nothing left to run
    results = {i: tq.pop_result(i, 0) for i in ("queued", "later", "running", "waiting")}
    assert results == {"queued": b"Q", "later": b"L", "running": b"R", "waiting": b"W!"}


def test_size_and_discard_count_deferred_tasks(tq: TaskQueue) -> None:
    """A task waiting for arguments counts in size() and is dropped by discard_pending()."""
    enqueue(tq, "arg")
    enqueue(tq, "other")
    tq.defer_task("dep", b"D", ["arg"], keep_result=True)
    assert tq.size() == 3
    arg = take(tq)
    assert tq.size() == 2
    assert tq.discard_pending() == 2
    assert (tq.size(), tq.get_status("dep"), tq.get_status("other")) == (0, None, None)
    assert tq.set_result("arg", b"1", 60, arg.lease)  # hands over to nobody
    assert tq.get(SHORT) is None


def test_discard_leaves_running_tasks_alone(tq: TaskQueue) -> None:
    """A running task whose id also waits in the queue (a wake-up copy) is not dropped."""
    enqueue(tq, "retried")
    first = take(tq)
    assert tq.retry_task("retried", first.lease, SHORT)  # delayed, with a wake-up call
    eventually(lambda: tq.get_status("retried"), TaskStatus.DELAYED)
    running = take(tq)  # taken again once due
    assert running.task_id == "retried"
    assert tq.defer_task("after", b"A", ["retried"], keep_result=True) is DeferResult.STORED
    enqueue(tq, "queued")
    assert tq.size() == 2
    assert tq.discard_pending() == 2  # "after" and "queued": what size() counted
    assert tq.size() == 0
    assert tq.get_status("retried") == TaskStatus.PROCESSING
    assert tq.set_result("retried", b"R", 60, running.lease)
    assert tq.pop_result("retried", 0) == b"R"
    assert tq.get(SHORT) is None


@pytest.mark.parametrize("depth", [3_000, 30_000])
def test_discard_a_pending_chain_of_any_depth(tq: TaskQueue, depth: int) -> None:
    """Purging a deep chain of pending tasks completes: every link goes, nothing is left."""
    enqueue(tq, "head", delay=3600)
    previous = "head"
    for link in range(depth):
        assert tq.defer_task(f"t{link}", b"T", [previous], keep_result=True) is DeferResult.STORED
        previous = f"t{link}"
    assert tq.size() == depth + 1
    assert tq.discard_pending() == depth + 1
    assert tq.size() == 0
    assert tq.get_status(previous) is None
    assert tq.pop_result(previous, 0) is TaskStatus.EXPIRED


def test_counts_by_state_and_ping(tq: TaskQueue) -> None:
    """counts() reports every unfinished state, always with all four keys; ping() answers."""
    empty = dict.fromkeys(
        [TaskStatus.PENDING, TaskStatus.DELAYED, TaskStatus.ENQUEUED, TaskStatus.PROCESSING], 0
    )
    assert tq.counts() == empty
    assert tq.ping() is True
    enqueue(tq, "running")
    enqueue(tq, "queued")
    tq.enqueue_task("later", b"L", keep_result=True, track=True, delay=60)
    running = take(tq)
    tq.defer_task("waiting", b"W", ["running"], keep_result=True)
    assert tq.counts() == {
        TaskStatus.PENDING: 1,
        TaskStatus.DELAYED: 1,
        TaskStatus.ENQUEUED: 1,
        TaskStatus.PROCESSING: 1,
    }
    assert tq.set_result("running", b"1", 60, running.lease)  # hands over: "waiting" is queued
    assert tq.counts()[TaskStatus.ENQUEUED] == 2
    assert sum(tq.counts().values()) == tq.size() == 3
