"""The TaskQueue contract (worq.typing.TaskQueue), run against every backend."""

from __future__ import annotations

import threading
import time

import pytest

from worq._backends import make_taskqueue
from worq.const import TaskStatus
from worq.testing import eventually
from worq.typing import DeferResult, TaskQueue

SHORT = 0.05
"""A timeout short enough to keep tests fast; long enough to be measurable."""


@pytest.fixture
def tq(url: str) -> TaskQueue:
    """A fresh backend queue named 'default'."""
    return make_taskqueue(url)


def take(tq: TaskQueue) -> tuple[str, bytes]:
    """Take the next task, failing the test if none arrives in time."""
    item = tq.get(5)
    assert item is not None, "no task arrived"
    return item


def test_enqueue_get_fifo_and_size(tq: TaskQueue) -> None:
    """Tasks come out in the order they went in; size counts the waiting ones."""
    assert tq.enqueue_task("a", b"A", keep_result=True)
    assert tq.enqueue_task("b", b"B", keep_result=True)
    assert tq.size() == 2
    assert take(tq) == ("a", b"A")
    assert take(tq) == ("b", b"B")
    assert tq.size() == 0


def test_duplicate_id_is_refused(tq: TaskQueue) -> None:
    """enqueue_task returns False and stores nothing for a known id."""
    assert tq.enqueue_task("a", b"A", keep_result=True)
    assert not tq.enqueue_task("a", b"other", keep_result=True)
    assert tq.size() == 1


def test_get_times_out(tq: TaskQueue) -> None:
    """get returns None once its timeout has passed without a task."""
    started = time.monotonic()
    assert tq.get(SHORT) is None
    assert time.monotonic() - started >= SHORT * 0.9


def test_get_wakes_on_enqueue(tq: TaskQueue) -> None:
    """A blocked get returns as soon as a task is enqueued from another thread."""
    got: list[tuple[str, bytes] | None] = []
    waiter = threading.Thread(target=lambda: got.append(tq.get(10)))
    waiter.start()
    tq.enqueue_task("a", b"A", keep_result=True)
    waiter.join(10)
    assert got == [("a", b"A")]


def test_status_lifecycle(tq: TaskQueue) -> None:
    """enqueued → processing → completed → (popped) unknown."""
    tq.enqueue_task("a", b"A", keep_result=True)
    assert tq.get_status("a") == TaskStatus.ENQUEUED
    take(tq)
    assert tq.get_status("a") == TaskStatus.PROCESSING
    tq.set_result("a", b"result", 60)
    assert tq.get_status("a") == TaskStatus.COMPLETED
    assert tq.pop_result("a", 0) == b"result"
    assert tq.get_status("a") is None
    assert tq.pop_result("a", 0) is TaskStatus.EXPIRED


def test_pop_result_not_ready_and_unknown(tq: TaskQueue) -> None:
    """pop_result: None while the task is not done; EXPIRED for an unknown task."""
    tq.enqueue_task("a", b"A", keep_result=True)
    assert tq.pop_result("a", 0) is None
    assert tq.pop_result("a", SHORT) is None
    assert tq.pop_result("nope", 0) is TaskStatus.EXPIRED


def test_pop_result_wakes_on_set_result(tq: TaskQueue) -> None:
    """A blocked pop_result returns as soon as the result is stored."""
    tq.enqueue_task("a", b"A", keep_result=True)
    take(tq)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(tq.pop_result("a", 10)))
    waiter.start()
    tq.set_result("a", b"R", 60)
    waiter.join(10)
    assert got == [b"R"]


def test_ignore_result_keeps_nothing(tq: TaskQueue) -> None:
    """A task that ignores its result is forgotten once taken."""
    tq.enqueue_task("a", b"A", keep_result=False)
    assert tq.get_status("a") == TaskStatus.ENQUEUED
    take(tq)
    assert tq.get_status("a") is None
    assert tq.enqueue_task("a", b"again", keep_result=False)


def test_defer_on_completed_argument_enqueues_at_once(tq: TaskQueue) -> None:
    """A task whose arguments are all done is queued straight away, with them."""
    tq.enqueue_task("arg", b"ARG", keep_result=True)
    take(tq)
    tq.set_result("arg", b"42", 60)
    assert tq.defer_task("t", b"T", ["arg"], keep_result=True) is DeferResult.STORED
    assert tq.get_status("t") == TaskStatus.ENQUEUED
    assert take(tq) == ("t", b"T")
    assert tq.get_arguments("t") == {"arg": b"42"}


def test_defer_waits_for_every_argument(tq: TaskQueue) -> None:
    """A task stays pending until the last argument's result is set."""
    for arg in ("x", "y"):
        tq.enqueue_task(arg, arg.encode(), keep_result=True)
    assert tq.defer_task("t", b"T", ["x", "y"], keep_result=True) is DeferResult.STORED
    assert tq.get_status("t") == TaskStatus.PENDING
    take(tq)
    take(tq)
    tq.set_result("x", b"1", 60)
    assert tq.get_status("t") == TaskStatus.PENDING
    assert tq.size() == 0
    tq.set_result("y", b"2", 60)
    assert tq.get_status("t") == TaskStatus.ENQUEUED
    assert take(tq) == ("t", b"T")
    assert tq.get_arguments("t") == {"x": b"1", "y": b"2"}


def test_one_result_feeds_several_dependants(tq: TaskQueue) -> None:
    """Every task waiting on a result receives it, and the waiter can still pop it."""
    tq.enqueue_task("arg", b"ARG", keep_result=True)
    tq.defer_task("t1", b"T1", ["arg"], keep_result=True)
    tq.defer_task("t2", b"T2", ["arg"], keep_result=False)
    take(tq)
    tq.set_result("arg", b"7", 60)
    assert {take(tq)[0], take(tq)[0]} == {"t1", "t2"}
    assert tq.get_arguments("t1") == {"arg": b"7"}
    assert tq.get_arguments("t2") == {"arg": b"7"}
    assert tq.pop_result("arg", 0) == b"7"


def test_defer_refusals(tq: TaskQueue) -> None:
    """Unknown or result-less arguments, and duplicate ids, store nothing."""
    tq.enqueue_task("fire", b"F", keep_result=False)
    tq.enqueue_task("kept", b"K", keep_result=True)
    assert tq.defer_task("t", b"T", ["nope"], keep_result=True) is DeferResult.MISSING_ARGUMENT
    assert tq.defer_task("t", b"T", ["fire"], keep_result=True) is DeferResult.MISSING_ARGUMENT
    assert tq.defer_task("kept", b"T", ["fire"], keep_result=True) is DeferResult.DUPLICATE
    assert tq.get_status("t") is None
    assert tq.size() == 2


def test_lapsed_task_expires_with_its_dependants(tq: TaskQueue) -> None:
    """A taken task whose heartbeats stop expires, and so do the tasks waiting on it."""
    tq.enqueue_task("arg", b"ARG", keep_result=True)
    tq.defer_task("t", b"T", ["arg"], keep_result=True)
    take(tq)
    tq.set_task_timeout("arg", SHORT)
    assert tq.pop_result("t", 10) is TaskStatus.EXPIRED
    assert tq.get_status("arg") is None


def test_heartbeat_extends_processing_task(tq: TaskQueue) -> None:
    """set_task_timeout keeps a taken task alive past its previous timeout."""
    tq.enqueue_task("a", b"A", keep_result=True)
    take(tq)
    tq.set_task_timeout("a", SHORT)
    tq.set_task_timeout("a", 60)
    assert tq.pop_result("a", SHORT * 3) is None
    assert tq.get_status("a") == TaskStatus.PROCESSING


def test_result_expires_after_timeout(tq: TaskQueue) -> None:
    """A stored result nobody takes is dropped after its timeout."""
    tq.enqueue_task("a", b"A", keep_result=True)
    take(tq)
    tq.set_result("a", b"R", SHORT)
    eventually(lambda: tq.get_status("a"), None)


def test_discard_pending(tq: TaskQueue) -> None:
    """discard_pending drops waiting tasks (their waiters see them expire), not running ones."""
    tq.enqueue_task("run", b"R", keep_result=True)
    take(tq)
    tq.enqueue_task("a", b"A", keep_result=True)
    tq.enqueue_task("b", b"B", keep_result=False)
    assert tq.discard_pending() == 2
    assert tq.size() == 0
    assert tq.pop_result("a", 0) is TaskStatus.EXPIRED
    assert tq.get_status("run") == TaskStatus.PROCESSING
    assert tq.get(SHORT) is None


def test_named_queues_are_separate(url: str) -> None:
    """Two queue names on one backend never see each other's tasks."""
    foo, bar = make_taskqueue(url, "foo"), make_taskqueue(url, "bar")
    foo.enqueue_task("a", b"A", keep_result=True)
    assert bar.size() == 0
    assert bar.get(SHORT) is None
    assert bar.get_status("a") is None
    assert bar.enqueue_task("a", b"A", keep_result=True)
    assert take(foo) == ("a", b"A")


def test_waiter_sees_a_lapse_that_starts_after_it_waits(tq: TaskQueue) -> None:
    """A waiter blocked before the task was taken still sees it expire promptly."""
    tq.enqueue_task("a", b"A", keep_result=True)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(tq.pop_result("a", 10)))
    waiter.start()
    take(tq)
    tq.set_task_timeout("a", SHORT)
    waiter.join(10)
    assert got == [TaskStatus.EXPIRED]
