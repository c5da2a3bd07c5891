"""Batched enqueue (Queue.map, Queue.starmap, Task.map) and collection (wait_all)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.exceptions
from redis.connection import AbstractConnection

from tests.redis_faults import Recording, client_class
from worq import (
    Deferred,
    DependencyUnavailable,
    DuplicateTask,
    SerializationError,
    Task,
    TaskFailure,
    TaskSpace,
    WaitResult,
    get_broker,
    get_queue,
    wait_all,
)
from worq._backends import make_taskqueue
from worq.const import TaskStatus
from worq.core import Broker
from worq.queue.redis import BATCH_SIZE
from worq.queue.redis import TaskQueue as RedisTaskQueue
from worq.testing import WAIT, eventually, thread_worker
from worq.typing import DeferResult, NewTask


def double(value: int) -> int:
    return 2 * value


def add(a: int, b: int) -> int:
    return a + b


def named_map(value: int) -> int:
    return 2 * value


def named_starmap(a: int, b: int) -> int:
    return a + b


def fail(value: int) -> int:
    raise ValueError(f"no {value}")


@pytest.fixture
def broker(url: str) -> Iterator[Broker]:
    """The worker side of ``url``'s default queue, running double, add and fail."""
    worker = get_broker(url)
    for fn in (double, add, fail):
        worker.expose(fn)
    yield worker
    worker.close()


class RoundTrips:
    """Counts requests written to Redis by any client of this process.

    A command is one write; a pipeline, however long, is one write too: so
    the count of ``send_packed_command`` calls is the number of round trips.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = AbstractConnection.send_packed_command

        def counting(conn: AbstractConnection, *args: Any, **kwargs: Any) -> None:
            self.count += 1
            original(conn, *args, **kwargs)  # type: ignore[no-untyped-call]  # untyped in redis-py

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)

    def during(self, operation: Callable[[], object]) -> int:
        before = self.count
        operation()
        return self.count - before


# -- map and starmap -----------------------------------------------------------


def test_map_and_starmap_results_in_order(url: str, broker: Broker) -> None:
    """Each Deferred is typed from the function and holds its item's result, in order."""
    q = get_queue(url)
    doubled = q.map(double, range(20))
    added = q.starmap(add, [(n, 100) for n in range(5)])
    assert len(doubled) == 20
    assert len(added) == 5
    assert len(q) == 25
    assert [d.name for d in doubled[:1] + added[:1]] == ["double", "add"]
    assert [d.task.args for d in added[:2]] == [(0, 100), (1, 100)]
    with thread_worker(broker):
        result = wait_all(doubled + added, WAIT)
    assert result.all_done
    assert result.not_done == []
    assert [d.value for d in result.done] == [2 * n for n in range(20)] + [
        n + 100 for n in range(5)
    ]
    assert result.done == doubled + added  # the order given


def test_map_of_nothing_sends_nothing(url: str) -> None:
    q = get_queue(url)
    assert q.map(double, []) == []
    assert q.starmap(add, iter(())) == []
    assert len(q) == 0


def test_map_on_a_fire_and_forget_queue(url: str, broker: Broker) -> None:
    """The tasks are sent; map returns None, as submit does."""
    fire = get_queue(url, ignore_result=True)
    assert fire.map(double, [1, 2, 3]) is None
    assert fire.starmap(add, [(1, 2)]) is None
    assert len(fire) == 4
    with thread_worker(broker):
        eventually(lambda: broker.counts()[TaskStatus.ENQUEUED], 0)
    assert len(fire) == 0


def test_task_path_map_with_options(url: str, broker: Broker) -> None:
    """Task(q.path).map/starmap: the untyped path, the Task's options on every task."""
    q = get_queue(url)
    later = Task(q.double, retries=2, delay=600).map([1, 2])
    assert later is not None
    assert [d.status for d in later] == [TaskStatus.DELAYED] * 2
    assert {d.task.options.retries for d in later if d.task.options} == {2}
    now = Task(q.add, result_timeout=30).starmap([(1, 2), (3, 4)])
    assert Task(q.add, ignore_result=True).starmap([(5, 6)]) is None
    assert {d.task.options.result_timeout for d in now if d.task.options} == {30}
    with thread_worker(broker):
        done, not_done = wait_all(later + now, 0.5)  # the delayed pair never runs
    assert [d.value for d in done] == [3, 7]
    assert not_done == later
    del q[:]


def test_task_ids_from_an_id_function(url: str) -> None:
    q = get_queue(url, id=lambda value: f"double-{value}")
    assert [d.id for d in q.map(double, [1, 2])] == ["double-1", "double-2"]
    with pytest.raises(ValueError, match="item 1 of the batch: task id function"):
        get_queue(url, id=lambda value: "ok" if value == 1 else value).map(double, [1, 2])
    assert len(q) == 2


def test_starmap_wants_tuples(url: str) -> None:
    q = get_queue(url)
    with pytest.raises(TypeError, match="a list at item 1: use map for one-argument tasks"):
        q.starmap(add, [(1, 2), [3, 4]])  # type: ignore[list-item]  # the mistake under test
    with pytest.raises(TypeError, match="map expects a task function"):
        q.map(double(2), [1])  # type: ignore[arg-type]  # the mistake under test
    assert len(q) == 0


def test_map_and_starmap_shadow_task_paths(url: str) -> None:
    """q.map is Queue.map; a task named "map" is reached through its full path."""
    space = TaskSpace()
    space.task(named_map, name="map")
    space.task(named_starmap, name="tools.starmap")
    worker = get_broker(url)
    worker.expose(space)
    q = get_queue(url)
    assert not isinstance(q.map, type(q))
    with thread_worker(worker):
        one = get_queue(url, target="map")(21)
        two = Task(get_queue(url, target="tools.starmap"))(1, 2)
        three = worker.queue("tools.starmap")(2, 2)
        assert wait_all([one, two, three], WAIT).all_done
    assert (one.value, two.value, three.value) == (42, 3, 4)
    worker.close()


# -- refusals --------------------------------------------------------------------


def test_an_unencodable_item_sends_nothing(url: str) -> None:
    """The error names the item's index, the task and the queue; the queue is unchanged."""
    q = get_queue(url)
    q.submit(double, 0)
    with pytest.raises(SerializationError) as raised:
        q.map(double, [1, 2, 3, object(), 5])  # type: ignore[arg-type]  # refused at run time
    message = str(raised.value)
    assert message.startswith("cannot send task 'double' (item 3 of the batch) to queue 'default'")
    assert "object" in message
    with pytest.raises(SerializationError, match=r"item 1 of the batch"):
        q.starmap(add, [(1, 2), (3, object())])  # type: ignore[arg-type]  # refused at run time
    assert len(q) == 1


def test_an_oversized_item_sends_nothing(url: str) -> None:
    broker = get_broker(url, max_message_size=1000)
    q = broker.queue()
    with pytest.raises(SerializationError, match=r"'double' \(item 2 of the batch\).*over"):
        q.map(double, [1, 2, "x" * 2000, 4])  # type: ignore[arg-type]  # too big, and mistyped
    assert len(q) == 0
    broker.close()


def test_duplicate_ids_in_a_batch(url: str) -> None:
    """Like single calls: an id already taken, in the queue or earlier in the batch, is
    refused; every other item is stored, and the error holds their Deferreds."""
    q = get_queue(url, id=lambda value: f"double-{value}")
    first = q.submit(double, 7)
    with pytest.raises(DuplicateTask) as raised:
        q.map(double, [1, 7, 2, 1, 3])
    error = raised.value
    assert (error.task_name, error.queue, error.task_id) == ("double", "default", "double-7")
    assert "(item 1 of the batch)" in error.error
    assert "2 of 5 items had a duplicate id (items 1, 3)" in error.error
    assert "the other 3 tasks were sent" in error.error
    assert error.deferreds is not None
    ids = [None if d is None else d.id for d in error.deferreds]
    assert ids == ["double-1", None, "double-2", None, "double-3"]
    assert len(q) == 4  # first, and the three new ones
    assert first.status == TaskStatus.ENQUEUED


def test_deferred_arguments_in_a_batch(url: str, broker: Broker) -> None:
    """Items holding Deferreds are stored as single calls store them: they run after them."""
    q = get_queue(url)
    a, b = q.submit(double, 1), q.submit(double, 10)
    mixed = q.starmap(add, [(a.as_arg(), 1), (5, 6), (a.as_arg(), b.as_arg())])
    assert [d.status for d in mixed] == [
        TaskStatus.PENDING,
        TaskStatus.ENQUEUED,
        TaskStatus.PENDING,
    ]
    with thread_worker(broker):
        assert wait_all(mixed, WAIT).all_done
    assert [d.value for d in mixed] == [3, 11, 22]


def test_a_deferred_argument_gone_in_a_batch(url: str, broker: Broker) -> None:
    """An item whose Deferred argument has no result left is refused; the others are sent."""
    q = get_queue(url)
    taken = q.submit(double, 1)
    with thread_worker(broker):
        assert taken.wait(WAIT)
    another_handle = Deferred(q._broker, taken.id, taken.name)  # its result was taken
    with pytest.raises(DependencyUnavailable) as raised:
        q.map(double, [4, another_handle.as_arg()])
    assert "task 'double' (item 1 of the batch)" in str(raised.value)
    assert raised.value.deferreds is not None
    assert [d is None for d in raised.value.deferreds] == [False, True]
    assert len(q) == 1


def test_delay_with_deferred_arguments_sends_nothing(url: str) -> None:
    q = get_queue(url)
    a = q.submit(double, 1)
    with pytest.raises(ValueError, match=r"'double' \(item 1 of the batch\): a delay or eta"):
        Task(q.double, delay=5).map([1, a, 2])
    assert len(q) == 1


# -- wait_all ----------------------------------------------------------------------


def test_wait_all_some_done_some_timed_out(url: str, broker: Broker) -> None:
    q = get_queue(url)
    fast = q.map(double, [1, 2, 3])
    failing = q.submit(fail, 4)
    slow = Task(q.double, delay=600).map([5, 6])
    assert slow is not None
    given = [slow[0], *fast, failing, slow[1]]
    with thread_worker(broker):
        result = wait_all(given, 0.5)
    assert isinstance(result, WaitResult)
    assert result.done == [*fast, failing]
    assert result.not_done == slow
    assert not result.all_done
    assert failing.status == TaskStatus.FAILED
    with pytest.raises(TaskFailure, match="ValueError: no 4"):
        _ = failing.value
    del q[:]


def test_wait_all_then_value_asks_the_backend_nothing(
    url: str, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = get_queue(url)
    sent = q.map(double, range(5))
    with thread_worker(broker):
        assert wait_all(sent, WAIT).all_done

    def no_backend(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the backend was asked")

    client = q._broker
    for method in ("pop_result", "pop_results", "status"):
        monkeypatch.setattr(client, method, no_backend)
    for method in ("pop_result", "pop_results", "get_status"):
        monkeypatch.setattr(client.taskqueue, method, no_backend)
    assert [d.value for d in sent] == [0, 2, 4, 6, 8]
    assert {d.status for d in sent} == {TaskStatus.SUCCESS}
    assert wait_all(sent, 0).all_done  # held: nothing to ask


def test_wait_all_of_nothing_and_of_held_outcomes(url: str, broker: Broker) -> None:
    assert tuple(wait_all([], 0)) == ([], [])
    q = get_queue(url)
    one = q.submit(double, 1)
    with thread_worker(broker):
        assert one.wait(WAIT)
    assert wait_all([one, one], 0).done == [one, one]


def test_wait_all_zero_timeout_only_looks(url: str) -> None:
    q = get_queue(url)
    sent = q.map(double, [1, 2])
    assert wait_all(sent, 0).not_done == sent
    assert all(d.status == TaskStatus.ENQUEUED for d in sent)  # nothing was taken


def test_wait_all_settles_lapsed_tasks(url: str) -> None:
    """A task whose worker vanished (lease lapsed) is expired by the waiter, as wait does."""
    broker = get_broker(url, initial_result_timeout=0.2)
    q = broker.queue()
    lost, kept = q.map(double, [1, 2])
    assert broker.take(timeout=1) is not None  # taken, then its worker "vanishes"
    broker.expose(double)
    with thread_worker(broker):
        result = wait_all([lost, kept], WAIT)
    assert result.all_done
    assert lost.status == TaskStatus.EXPIRED
    assert kept.value == 4
    broker.close()


# -- the backends' batch calls ---------------------------------------------------------


def test_enqueue_tasks_contract(url: str) -> None:
    tq = make_taskqueue(url)
    assert tq.enqueue_task("old", b"o", keep_result=True, track=True)
    results = tq.enqueue_tasks(
        [
            NewTask("a", b"A", keep_result=True, track=True),
            NewTask("old", b"O", keep_result=True, track=True),
            NewTask("a", b"A again", keep_result=True, track=True),
            NewTask("b", b"B", keep_result=True, track=True, argument_ids=("a",)),
            NewTask("c", b"C", keep_result=True, track=True, argument_ids=("nobody",)),
            NewTask("d", b"D", keep_result=False, track=False, delay=60),
        ]
    )
    assert results == [
        DeferResult.STORED,
        DeferResult.DUPLICATE,
        DeferResult.DUPLICATE,
        DeferResult.STORED,
        DeferResult.MISSING_ARGUMENT,
        DeferResult.STORED,
    ]
    assert [tq.get_status(i) for i in ("a", "b", "c", "d")] == [
        TaskStatus.ENQUEUED, TaskStatus.PENDING, None, TaskStatus.DELAYED,
    ]  # fmt: skip
    assert tq.enqueue_tasks([]) == []
    tq.close()


def test_pop_results_contract(url: str) -> None:
    tq = make_taskqueue(url)
    tq.enqueue_tasks([NewTask(i, i.encode(), keep_result=True, track=True) for i in "abc"])
    for _ in "ab":
        taken = tq.get(1)
        assert taken is not None
        assert tq.set_result(taken.task_id, b"R" + taken.message, 60, taken.lease)
    assert tq.pop_results(["a", "b", "c", "gone"], 0.05) == {
        "a": b"Ra",
        "b": b"Rb",
        "gone": TaskStatus.EXPIRED,
    }
    assert tq.pop_results(["a"], 0) == {"a": TaskStatus.EXPIRED}  # taken once
    assert tq.pop_results([], None) == {}
    tq.close()


# -- Redis: round trips, chunks, lost replies ---------------------------------------------


@pytest.fixture
def rurl(clean_redis_url: str) -> str:
    """The session's Redis server, emptied: for the Redis-only tests below."""
    return clean_redis_url


def test_map_sends_one_round_trip_per_chunk(rurl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    q = get_queue(rurl)
    q.submit(double, 0)  # a pooled connection, the enqueue script loaded
    trips = RoundTrips(monkeypatch)
    assert BATCH_SIZE == 1000
    sent: list[Any] = []
    assert trips.during(lambda: sent.extend(q.map(double, range(2500)))) == 3
    assert len(sent) == 2500
    assert len(q) == 2501
    assert trips.during(lambda: q.map(double, range(1000))) == 1
    assert trips.during(lambda: wait_all(sent, 0)) == 3  # one poll of 2,500 results


def test_wait_all_collects_in_few_round_trips(rurl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = get_broker(rurl)
    broker.expose(double)
    q = get_queue(rurl)
    sent = q.map(double, range(1200))
    with thread_worker(broker, timeout=0.1):
        eventually(lambda: sum(broker.counts().values()), 0)
    trips = RoundTrips(monkeypatch)
    result: list[WaitResult[Any]] = []
    assert trips.during(lambda: result.append(wait_all(sent, WAIT))) == 2
    assert [d.value for d in result[0].done] == [2 * n for n in range(1200)]
    broker.close()


def test_map_reloads_flushed_scripts(rurl: str) -> None:
    q = get_queue(rurl)
    client = redis.Redis.from_url(rurl)
    client.script_flush()
    client.close()
    assert len(q.map(double, range(3))) == 3
    assert len(q) == 3


def _losing_chunk_replies(lose: int, meanwhile: Callable[[], object] | None = None) -> Any:
    """A client class whose connections run every round trip of script calls but
    lose the replies of the first ``lose`` of them (after ``meanwhile``)."""
    left = [lose]

    class Losing(Recording):
        def answer(self, command: tuple[Any, ...], reply: Any) -> Any:
            if command[:1] != ("EVALSHA",) or left[0] <= 0:
                return reply
            left[0] -= 1
            self.sent = ()  # the rest of the round trip's replies go unread
            if meanwhile is not None:
                meanwhile()
            raise redis.exceptions.ConnectionError("reply lost (injected by the test)")

    return client_class(Losing)


def test_a_lost_chunk_reply_stores_each_task_once(rurl: str) -> None:
    """The chunk is sent again, each call with its own token and the retry flag: every
    task is stored exactly once and reported stored, even when a worker took and
    finished some of them before the retry."""
    plain = RedisTaskQueue(rurl)

    def a_worker_runs_one() -> None:
        taken = plain.get(0)
        assert taken is not None
        assert plain.set_result(taken.task_id, b"done", 60, taken.lease)
        assert plain.pop_result(taken.task_id, 0) == b"done"  # gone: its id is free again

    tq = RedisTaskQueue(rurl, redis_factory=_losing_chunk_replies(1, a_worker_runs_one))
    tasks = [NewTask(f"t{n}", b"m", keep_result=True, track=True) for n in range(1500)]
    assert tq.enqueue_tasks(tasks) == [DeferResult.STORED] * 1500
    assert plain.size() == 1499  # one ran, none stored twice
    # a new call is a new call: t0 ran and its result was taken, so its id is free
    assert tq.enqueue_tasks(tasks[:2]) == [DeferResult.STORED, DeferResult.DUPLICATE]
    tq.close()
    plain.close()


def test_a_lost_poll_reply_delivers_each_result_once(rurl: str) -> None:
    plain = RedisTaskQueue(rurl)
    ids = [f"t{n}" for n in range(3)]
    plain.enqueue_tasks([NewTask(i, b"m", keep_result=True, track=True) for i in ids])
    for _ in ids:
        taken = plain.get(0)
        assert taken is not None
        plain.set_result(taken.task_id, f"R{taken.task_id}".encode(), 60, taken.lease)
    tq = RedisTaskQueue(rurl, redis_factory=_losing_chunk_replies(1))
    assert tq.pop_results(ids, 0) == {i: f"R{i}".encode() for i in ids}
    assert plain.pop_results(ids, 0) == dict.fromkeys(ids, TaskStatus.EXPIRED)
    tq.close()
    plain.close()


def test_a_wait_right_after_sending_polls_a_window_then_all_at_the_end(rurl: str) -> None:
    """Polling every result of a batch just sent mostly finds nothing: the first poll
    covers BATCH_SIZE of them. When the time is up, one last poll covers all, so a
    result that is there is collected even behind a task that never finishes."""
    plain = RedisTaskQueue(rurl)
    ids = ["slow"] + [f"t{n}" for n in range(BATCH_SIZE + 500)]
    plain.enqueue_tasks([NewTask(i, b"m", keep_result=True, track=True) for i in ids])
    slow = plain.get(0)  # taken, never finished: its lease outlives the wait
    assert slow is not None
    assert slow.task_id == "slow"
    for _ in ids[1:]:
        taken = plain.get(0)
        assert taken is not None
        assert plain.set_result(taken.task_id, b"R", 60, taken.lease)
    assert plain.pop_results(ids, 0.2) == dict.fromkeys(ids[1:], b"R")

    client = redis.Redis.from_url(rurl)
    fresh = [f"f{n}" for n in range(2 * BATCH_SIZE)]
    plain.enqueue_tasks([NewTask(i, b"m", keep_result=True, track=True) for i in fresh])
    client.config_resetstat()
    assert plain.pop_results(fresh, 0.2) == {}
    polls = int(client.info("commandstats")["cmdstat_evalsha"]["calls"])
    assert polls == BATCH_SIZE + len(fresh)  # a window, then all once the wait ended
    client.close()
    plain.close()
