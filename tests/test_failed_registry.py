"""The failed-task registry: what is filed, how long, retry, discard, on every backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests import process_tasks
from worq import Task, TaskSpace, get_broker
from worq.core import Broker
from worq.exceptions import DuplicateTask, TaskExpired, TaskFailure
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.testing import WAIT, eventually
from worq.typing import RetryResult

ts = TaskSpace("reg")
broken: set[str] = set()
"""Markers of the tasks that fail while their marker is here (a fix is deployed: removed)."""
held = threading.Event()


@ts.task
def fragile(marker: str) -> str:
    if marker in broken:
        raise ValueError(f"{marker} is broken")
    return f"{marker} ok"


@ts.task
def join(a: str, b: str) -> str:
    return f"{a}+{b}"


@ts.task
def hold() -> str:
    assert held.wait(WAIT)
    return "held"


@pytest.fixture
def broker(url: str) -> Broker:
    made = get_broker(url, "reg")
    made.expose(ts)
    return made


@pytest.fixture
def pool(broker: Broker) -> Iterator[ThreadPool]:
    started = ThreadPool(broker, workers=3)
    started.start(timeout=0.05)
    yield started
    held.set()
    started.stop()
    held.clear()
    broken.clear()


def failed_ids(broker: Broker) -> list[str]:
    return [t.id for t in broker.failed_tasks()]


def test_a_failure_is_filed_with_its_message_error_and_attempts(
    broker: Broker, pool: ThreadPool
) -> None:
    broken.update({"a", "b"})
    q = broker.queue()
    first = Task(q.reg.fragile, retries=1, retry_backoff=0)("a")
    assert first.wait(WAIT)
    second = q.reg.fragile("b")
    assert second.wait(WAIT)
    latest, earliest = broker.failed_tasks()
    assert (latest.id, earliest.id) == (second.id, first.id)
    assert (earliest.name, earliest.queue, earliest.status) == ("reg.fragile", "reg", "failed")
    assert earliest.error == "ValueError: a is broken"
    assert (earliest.attempts, latest.attempts) == (2, 1)
    assert earliest.due_at is not None
    assert earliest.due_at <= earliest.failed_at <= time.time()
    assert b'"a"' in earliest.message.split(b"\n", 1)[1]
    assert broker.failed_tasks(limit=1) == [latest]
    with pytest.raises(TaskFailure, match="a is broken"):
        _ = first.value  # the waiter still gets the failure


def test_a_fire_and_forget_failure_is_filed_too(broker: Broker, pool: ThreadPool) -> None:
    broken.add("lost")
    assert Task(broker.queue().reg.fragile, ignore_result=True)("lost") is None
    eventually(lambda: [(t.name, t.error) for t in broker.failed_tasks()],
               [("reg.fragile", "ValueError: lost is broken")])  # fmt: skip
    (filed,) = broker.failed_tasks()
    assert broker.retry_failed([filed.id]) == {filed.id: RetryResult.RETRIED}
    eventually(lambda: failed_ids(broker), [filed.id])  # still broken: filed again
    broken.clear()
    broker.retry_failed([filed.id])
    eventually(lambda: broker.status(filed), None)  # ran and was forgotten, as fire and forget is
    assert failed_ids(broker) == []


def test_a_process_pool_files_the_failures_of_its_workers(url: str) -> None:
    """Its workers run the tasks (on Redis they take them too): the fire-and-forget
    failure is filed from the message bytes a worker holds undecoded."""
    pool = ProcessPool(process_tasks.init(url), process_tasks.init, workers=1)
    pool.start(timeout=0.1, handle_sigterm=False)
    try:
        q = get_broker(url).queue()
        kept = q.proc.add(["x"])
        Task(q.proc.add, ignore_result=True)(["y"])
        assert kept.wait(WAIT)
        broker = get_broker(url)
        eventually(lambda: len(broker.failed_tasks()), 2)
    finally:
        pool.stop()
    forgotten, failed = broker.failed_tasks()
    assert failed.id == kept.id
    assert "does not fit" in failed.error
    assert forgotten.name == "proc.add"
    assert b'["y"]' in forgotten.message
    assert broker.retry_failed([forgotten.id]) == {forgotten.id: RetryResult.RETRIED}
    assert broker.size() == 1


def test_a_retry_runs_the_task_again_and_its_waiter_gets_the_new_outcome(
    broker: Broker, pool: ThreadPool
) -> None:
    broken.add("fix")
    d = broker.queue().reg.fragile("fix")
    eventually(lambda: failed_ids(broker), [d.id])  # nobody took its failure yet
    broken.clear()
    assert broker.retry_failed([d.id]) == {d.id: RetryResult.RETRIED}
    assert failed_ids(broker) == []
    assert d.wait(WAIT)
    assert d.value == "fix ok"


def test_a_retry_takes_the_dependants_along(broker: Broker) -> None:
    """The dependant that failed with the task is retried after it and waits for it;
    the one still waiting for another argument waits for the new result instead."""
    broken.add("root")
    q = broker.queue()
    root = q.reg.fragile("root")
    failed_with = q.reg.join(root, "x")
    waits = q.reg.hold()
    still_waiting = q.reg.join(root, waits)
    pool = ThreadPool(broker, workers=3)  # started once all are sent: they wait for root
    pool.start(timeout=0.05)
    try:
        eventually(lambda: failed_ids(broker), [failed_with.id, root.id])
        broken.clear()
        done = broker.retry_failed([root.id])
        assert done == {root.id: RetryResult.RETRIED, failed_with.id: RetryResult.RETRIED}
        assert failed_with.wait(WAIT)
        assert failed_with.value == "root ok+x"
        held.set()
        assert still_waiting.wait(WAIT)
        assert still_waiting.value == "root ok+held"
        assert failed_ids(broker) == []
    finally:
        held.set()
        pool.stop()
        held.clear()
        broken.clear()


def test_a_dependant_sent_after_the_failure_is_taken_along_too(
    broker: Broker, pool: ThreadPool
) -> None:
    broken.add("early")
    q = broker.queue()
    root = q.reg.fragile("early")
    eventually(lambda: failed_ids(broker), [root.id])
    late = q.reg.join(root, "late")
    eventually(lambda: failed_ids(broker), [late.id, root.id])
    waits = q.reg.hold()
    later = q.reg.join(root, waits)  # handed the failure, still waiting for the other
    (entry,) = [t for t in broker.failed_tasks() if t.id == root.id]
    assert entry.dependants == (late.id, later.id)
    broken.clear()
    assert broker.retry_failed([root.id]) == {
        root.id: RetryResult.RETRIED,
        late.id: RetryResult.RETRIED,
    }
    assert late.wait(WAIT)
    assert late.value == "early ok+late"
    held.set()
    assert later.wait(WAIT)
    assert later.value == "early ok+held"


def test_what_cannot_be_retried_is_said_and_left(broker: Broker, pool: ThreadPool) -> None:
    broken.update({"gone", "again"})
    q = broker.queue()
    root = q.reg.fragile("gone")
    dependant = q.reg.join(root, "x")
    again = Task(q.reg.fragile, id="fixed-id")("again")
    assert dependant.wait(WAIT)
    assert again.wait(WAIT)
    assert root.wait(WAIT)
    with pytest.raises(TaskFailure):
        _ = root.value  # its result is taken
    with pytest.raises(TaskFailure):
        _ = again.value
    broker.discard_failed([root.id])
    sent_anew = Task(q.reg.hold, id="fixed-id")()
    assert broker.retry_failed([dependant.id, "no-such-id", again.id]) == {
        "no-such-id": RetryResult.UNKNOWN,
        again.id: RetryResult.BUSY,
        dependant.id: RetryResult.MISSING_ARGUMENT,
    }
    assert sorted(failed_ids(broker)) == sorted([again.id, dependant.id])
    held.set()
    assert sent_anew.wait(WAIT)


def test_retry_all_goes_in_the_order_they_failed(broker: Broker, pool: ThreadPool) -> None:
    broken.update({"one", "two"})
    q = broker.queue()
    one = q.reg.fragile("one")
    two = q.reg.fragile("two")
    eventually(lambda: sorted(failed_ids(broker)), sorted([one.id, two.id]))
    broken.clear()
    in_failure_order = failed_ids(broker)[::-1]
    assert list(broker.retry_failed()) == in_failure_order
    assert one.wait(WAIT)
    assert two.wait(WAIT)
    assert [one.value, two.value] == ["one ok", "two ok"]
    assert broker.retry_failed() == {}


def test_an_expired_task_is_filed_as_expired(broker: Broker) -> None:
    d = broker.queue().reg.fragile("never run")
    assert broker.task_failed(d, "given up")
    (filed,) = broker.failed_tasks()
    assert (filed.id, filed.status, filed.error, filed.attempts) == (d.id, "expired", "given up", 0)
    assert d.wait(WAIT)
    with pytest.raises(TaskExpired):
        _ = d.value
    assert broker.retry_failed([d.id]) == {d.id: RetryResult.RETRIED}
    assert broker.size() == 1


def test_the_registry_keeps_the_latest_and_for_a_time(url: str) -> None:
    broker = get_broker(url, "reg", failed_limit=3, failed_ttl=0.5)
    ids = [broker.queue().reg.fragile(str(n)).id for n in range(5)]
    for task_id in ids:
        broker.task_failed(_named(task_id), "expired")
    assert failed_ids(broker) == ids[:1:-1]
    eventually(lambda: failed_ids(broker), [])  # each kept half a second


def test_discard_drops_what_it_is_asked_to(broker: Broker) -> None:
    ids = [broker.queue().reg.fragile(str(n)).id for n in range(3)]
    for task_id in ids:
        broker.task_failed(_named(task_id), "expired")
    assert broker.discard_failed([ids[0], "unknown"]) == [ids[0]]
    assert sorted(broker.discard_failed()) == sorted(ids[1:])
    assert failed_ids(broker) == []


def test_bad_settings_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="failed_limit must be a positive"):
        get_broker(url, failed_limit=0)
    with pytest.raises(ValueError, match="failed_ttl"):
        get_broker(url, failed_ttl=-1)
    with pytest.raises(ValueError, match="limit must be a positive"):
        get_broker(url).failed_tasks(0)


class _named:
    """Any object with a task's id and name, as Broker.task_failed takes."""

    def __init__(self, task_id: str) -> None:
        self.id, self.name = task_id, "reg.fragile"


def test_a_duplicate_of_a_filed_id_is_still_refused(broker: Broker) -> None:
    d = Task(broker.queue().reg.fragile, id="dup")("x")
    broker.task_failed(d, "expired")
    with pytest.raises(DuplicateTask):
        Task(broker.queue().reg.fragile, id="dup")("x")


def test_the_next_task_in_line_says_when_it_was_due(broker: Broker) -> None:
    assert broker.next_in_line() is None
    before = time.time()
    first = broker.queue().reg.fragile("first")
    Task(broker.queue().reg.fragile, id="mine")("second")
    envelope = broker.next_in_line()
    assert envelope is not None
    assert envelope.id == first.id
    assert envelope.due_ms is not None
    assert before - 0.001 <= envelope.due_ms / 1000 <= time.time()
