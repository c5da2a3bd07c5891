"""Lost replies: a command runs on the server, then its connection breaks.

Each test makes a client whose connections run a chosen command for real
and then raise ``ConnectionError`` in place of its reply, as a reset
connection does. The TaskQueue retries the call under the same request
token; the caller must see what the lost reply said, and no task or result
may be lost, duplicated or handed out twice.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.exceptions

from tests.redis_faults import Recording, client_class
from worq import BackendUnavailable, WorqError, get_broker
from worq.const import TaskStatus
from worq.queue.redis import _SOURCES, RETRY_DELAYS, TaskQueue
from worq.testing import WAIT, RedisServer, eventually, thread_worker
from worq.typing import DeferResult, Taken

LOSSY = "lossy"
"""Client name of the lossy clients, to find them in CLIENT LIST."""

Match = Callable[[tuple[Any, ...]], bool]


class Plan:
    """Which commands lose their reply, and what happened meanwhile.

    Attributes:
        match: Picks the commands whose reply is lost.
        times: How many more replies to lose.
        meanwhile: Run after the command, before its reply is lost: what other
            clients do while the caller has not heard back yet.
        lost: The commands whose reply was lost.
    """

    def __init__(
        self, match: Match, times: int = 1, meanwhile: Callable[[], object] | None = None
    ) -> None:
        self.match, self.times, self.meanwhile = match, times, meanwhile
        self.lost: list[tuple[Any, ...]] = []
        self.armed = threading.Event()
        self.armed.set()
        self._lock = threading.Lock()

    def take(self, args: tuple[Any, ...]) -> bool:
        """True when this command's reply is to be lost."""
        with self._lock:
            if not self.armed.is_set() or self.times <= 0 or not self.match(args):
                return False
            self.times -= 1
            self.lost.append(args)
            return True


def losing(plan: Plan) -> type[redis.Redis]:
    """A client class that runs every command but loses the replies ``plan`` picks."""

    class LosesReplies(Recording):
        def answer(self, command: tuple[Any, ...], reply: Any) -> Any:
            if plan.take(command):
                if plan.meanwhile is not None:
                    plan.meanwhile()
                raise redis.exceptions.ConnectionError("reply lost (injected by the test)")
            return reply

    return client_class(LosesReplies)


def script(name: str, argv: Callable[[list[Any]], bool] = lambda argv: True) -> Match:
    """Matches a run of the named worq script whose ARGV satisfies ``argv``."""
    sha = hashlib.sha1(_SOURCES[name].encode()).hexdigest()

    def match(args: tuple[Any, ...]) -> bool:
        if args[0] != "EVALSHA" or args[1] != sha:
            return False
        numkeys = int(args[2])
        return argv([_text(a) for a in args[3 + numkeys :]])

    return match


def command(name: str, first_key: str) -> Match:
    """Matches the named command on ``first_key``."""
    return lambda args: args[0] == name and _text(args[1]) == first_key


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@pytest.fixture
def url(clean_redis_url: str) -> str:
    """The session Redis server, emptied (for this module, whose tests are Redis-only)."""
    return clean_redis_url


@pytest.fixture
def plain(url: str) -> Iterator[TaskQueue]:
    """A well-behaved client of the default queue: another worker, another waiter."""
    tq = TaskQueue(url)
    yield tq
    tq.close()


@pytest.fixture
def inspect(url: str) -> Iterator[redis.Redis]:
    """A raw client, to look at the keys."""
    client = redis.Redis.from_url(url)
    yield client
    client.close()


def lossy(url: str, plan: Plan, **options: Any) -> TaskQueue:
    """A TaskQueue on the default queue whose client loses the replies ``plan`` picks."""
    return TaskQueue(f"{url}?client_name={LOSSY}", redis_factory=losing(plan), **options)


def blocked(client: redis.Redis, name: str = LOSSY) -> bool:
    """True while a client named ``name`` is blocked in a BLMOVE or BLPOP."""
    return any(
        entry["name"] == name and entry["cmd"] in ("blmove", "blpop")
        for entry in client.client_list()
    )


def finished(tq: TaskQueue, task_id: str, result: bytes = b"R") -> None:
    """Run ``task_id`` to its end on ``tq``, as a worker would."""
    taken = tq.get(0)
    assert taken is not None
    assert taken.task_id == task_id
    assert tq.set_result(task_id, result, 60, taken.lease)


# -- storing tasks ------------------------------------------------------------


def test_lost_enqueue_reply_stores_the_task_once(url: str, inspect: redis.Redis) -> None:
    """The retry of an enqueue that ran answers True, not "duplicate"; one task is queued."""
    plan = Plan(script("enqueue"))
    tq = lossy(url, plan)
    assert tq.enqueue_task("a", b"A", keep_result=True, track=True)
    assert plan.lost
    assert inspect.lrange("worq:{default}:queue", 0, -1) == [b"a"]
    assert not tq.enqueue_task("a", b"A again", keep_result=True, track=True)  # a real duplicate
    tq.close()


@pytest.mark.parametrize("keep", [True, False])
def test_lost_enqueue_reply_of_a_task_that_finished_before_the_retry(
    url: str, plain: TaskQueue, inspect: redis.Redis, keep: bool
) -> None:
    """A task run to its end before the retry arrives is neither a duplicate nor stored again."""

    def run_it() -> None:
        taken = plain.get(0)
        assert taken is not None
        if keep:
            assert plain.set_result("a", b"R", 60, taken.lease)

    tq = lossy(url, Plan(script("enqueue"), meanwhile=run_it))
    assert tq.enqueue_task("a", b"A", keep_result=keep, track=keep)
    assert tq.size() == 0
    assert inspect.exists("worq:{default}:task:a") == 0
    assert plain.pop_result("a", 0) == (b"R" if keep else TaskStatus.EXPIRED)
    tq.close()


def test_lost_defer_reply_stores_the_task_once(url: str, plain: TaskQueue) -> None:
    """The retry of a defer that ran answers STORED; the task waits once and runs once."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    tq = lossy(url, Plan(script("defer")))
    assert tq.defer_task("b", b"B", ["a"], keep_result=True) is DeferResult.STORED
    assert tq.defer_task("b", b"B", ["a"], keep_result=True) is DeferResult.DUPLICATE
    finished(plain, "a")
    taken = plain.get(0)
    assert taken is not None
    assert (taken.task_id, plain.get_arguments("b")) == ("b", {"a": b"R"})
    assert plain.get(0) is None
    tq.close()


def test_broker_send_survives_a_lost_enqueue_reply(url: str) -> None:
    """Through a broker: no DuplicateTask, and the task's value arrives."""
    plan = Plan(script("enqueue"))
    client = get_broker(url, redis_factory=losing(plan))
    worker = get_broker(url)
    worker.expose(str.upper)
    with thread_worker(worker, timeout=0.1):
        res = client.queue().upper("sent once")
        assert res.wait(WAIT)
    assert res.value == "SENT ONCE"
    assert plan.lost
    client.close()
    worker.close()


# -- taking tasks -------------------------------------------------------------


def test_lost_get_reply_hands_back_the_same_lease(url: str, plain: TaskQueue) -> None:
    """The retry of a get that leased a task returns that task under that lease."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    plan = Plan(script("get"))
    tq = lossy(url, plan)
    taken = tq.get(0)
    assert plan.lost
    assert taken is not None
    assert (taken.task_id, taken.message, taken.attempt) == ("a", b"A", 1)
    assert plain.get(0) is None  # nobody else gets it
    assert tq.set_task_timeout("a", 60, taken.lease)  # the caller holds the lease
    assert tq.set_result("a", b"R", 60, taken.lease)
    assert plain.pop_result("a", 0) == b"R"
    tq.close()


def test_lost_get_reply_of_an_untracked_task_still_delivers_it(url: str, plain: TaskQueue) -> None:
    """A fire-and-forget task is forgotten once taken: the retry still hands it over."""
    plain.enqueue_task("a", b"A", keep_result=False, track=False)
    tq = lossy(url, Plan(script("get")))
    assert tq.get(0) == Taken("a", b"A", 1, "")
    assert plain.get(0) is None
    tq.close()


def test_lost_reply_of_the_get_after_a_blocking_wait(
    url: str, plain: TaskQueue, inspect: redis.Redis
) -> None:
    """A worker woken by a task loses the reply of the script that leased it: same lease.

    That script runs in the round trip of the wait (BLMOVE, then get.lua on
    the id it moved), on the wait's own connection.
    """
    plan = Plan(script("get", lambda argv: argv[2] != ""))  # the call taking a claimed id
    tq = TaskQueue(f"{url}?client_name={LOSSY}", redis_factory=losing(plan))
    got: list[Taken | None] = []
    getter = threading.Thread(target=lambda: got.append(tq.get(WAIT)))
    getter.start()
    eventually(lambda: blocked(inspect), True)
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    getter.join(WAIT)
    assert plan.lost
    assert [t.task_id if t else None for t in got] == ["a"]
    assert got[0] is not None
    assert tq.set_task_timeout("a", 60, got[0].lease)
    assert inspect.exists("worq:{default}:claimed", "worq:{default}:queue") == 0
    tq.close()


def test_lost_blmove_reply_is_recovered(url: str, inspect: redis.Redis) -> None:
    """An id moved out of the queue by a BLMOVE whose reply was lost is taken; it runs once.

    The get.lua call after the cut round trip takes it from the claimed list;
    had the worker died instead, a pool's sweep would put it back in the queue
    (test_redis.py::test_id_stranded_in_claimed_list_goes_back_to_the_queue).
    """
    plan = Plan(command("BLMOVE", "worq:{default}:queue"))
    tq = TaskQueue(
        f"{url}?client_name={LOSSY}",
        redis_factory=losing(plan),
        initial_result_timeout=0.2,
    )
    sweeper = TaskQueue(url, initial_result_timeout=0.2)
    got: list[Taken | None] = []
    getter = threading.Thread(target=lambda: got.append(tq.get(WAIT)))
    getter.start()
    eventually(lambda: blocked(inspect), True)
    sweeper.enqueue_task("a", b"A", keep_result=True, track=True)
    eventually(lambda: bool(plan.lost), True)
    eventually(lambda: (sweeper.reclaim(10), bool(got))[1], True)  # a pool's sweep
    getter.join(WAIT)
    assert [t.task_id if t else None for t in got] == ["a"]
    assert got[0] is not None
    assert tq.set_task_timeout("a", 60, got[0].lease)
    assert sweeper.get(0) is None
    tq.close()
    sweeper.close()


def test_empty_task_id_is_a_task(url: str, plain: TaskQueue) -> None:
    """A task whose id is "" is taken like any other, not read as "nothing to run"."""
    assert plain.enqueue_task("", b"nameless", keep_result=True, track=True)
    taken = plain.get(0)
    assert taken is not None
    assert (taken.task_id, taken.message) == ("", b"nameless")


# -- taking results -----------------------------------------------------------


def test_lost_pop_result_reply_delivers_the_result_exactly_once(
    url: str, plain: TaskQueue, inspect: redis.Redis
) -> None:
    """The retry of a take that ran gets the result; every other client sees it gone."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    finished(plain, "a")
    plan = Plan(script("pop_result"))
    tq = lossy(url, plan)
    assert tq.pop_result("a", 0) == b"R"
    assert plan.lost
    assert plain.pop_result("a", 0) is TaskStatus.EXPIRED
    assert tq.pop_result("a", 0) is TaskStatus.EXPIRED  # a new call is another taker
    assert plain.get_status("a") is None
    assert all(inspect.pttl(key) > 0 for key in inspect.scan_iter("worq:*taken:*"))
    tq.close()


@pytest.mark.parametrize("lose", ["wait", "take"])
def test_lost_reply_while_waiting_for_a_result(
    url: str, plain: TaskQueue, inspect: redis.Redis, lose: str
) -> None:
    """A waiter blocked on a result loses the wake-up's reply, or the take's: it gets it."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    taken = plain.get(0)
    assert taken is not None
    result_key = "worq:{default}:result:a"
    match = (
        (lambda args: command("BLPOP", result_key)(args) or command("BLMOVE", result_key)(args))
        if lose == "wait"
        else script("pop_result")
    )
    plan = Plan(match)
    plan.armed.clear()
    tq = lossy(url, plan)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(tq.pop_result("a", WAIT)))
    waiter.start()
    eventually(lambda: blocked(inspect), True)
    plan.armed.set()
    assert plain.set_result("a", b"R", 60, taken.lease)
    waiter.join(WAIT)
    assert plan.lost
    assert got == [b"R"]
    assert plain.pop_result("a", 0) is TaskStatus.EXPIRED
    tq.close()


def test_two_waiters_one_losing_replies_get_the_result_once(
    url: str, plain: TaskQueue, inspect: redis.Redis
) -> None:
    """Two clients wait on one result, one of them losing its take's reply: one gets it."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    taken = plain.get(0)
    assert taken is not None
    plan = Plan(script("pop_result"))
    plan.armed.clear()
    tq = lossy(url, plan)
    other = TaskQueue(f"{url}?client_name=other")
    got: list[object] = []
    lock = threading.Lock()

    def wait(client: TaskQueue) -> None:
        outcome = client.pop_result("a", WAIT)
        with lock:
            got.append(outcome)

    waiters = [threading.Thread(target=wait, args=(client,)) for client in (tq, other)]
    for waiter in waiters:
        waiter.start()
    eventually(lambda: blocked(inspect) and blocked(inspect, "other"), True)
    plan.armed.set()
    assert plain.set_result("a", b"R", 60, taken.lease)
    for waiter in waiters:
        waiter.join(WAIT)
    assert plan.lost
    assert sorted(map(repr, got)) == sorted(map(repr, [b"R", TaskStatus.EXPIRED]))
    tq.close()
    other.close()


# -- running tasks --------------------------------------------------------------


def test_lost_heartbeat_and_retry_replies(url: str, plain: TaskQueue, inspect: redis.Redis) -> None:
    """Heartbeat and retry answer True on their retry; the task is queued again once."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    plan = Plan(lambda args: script("heartbeat")(args) or script("retry")(args), times=2)
    tq = lossy(url, plan)
    taken = tq.get(0)
    assert taken is not None
    assert tq.set_task_timeout("a", 60, taken.lease)
    assert tq.retry_task("a", taken.lease, 0)
    assert len(plan.lost) == 2
    assert inspect.lrange("worq:{default}:queue", 0, -1) == [b"a"]
    again = plain.get(0)
    assert again is not None
    assert (again.task_id, again.attempt) == ("a", 2)
    assert not tq.retry_task("a", taken.lease, 0)  # a new call with the old lease
    tq.close()


def test_lost_set_result_reply_stores_the_result_once(url: str, plain: TaskQueue) -> None:
    """A result whose storing lost its reply is stored, and handed to its dependant, once."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    assert plain.defer_task("b", b"B", ["a"], keep_result=True) is DeferResult.STORED
    plan = Plan(script("set_result"))
    tq = lossy(url, plan)
    taken = tq.get(0)
    assert taken is not None
    assert tq.set_result("a", b"R", 60, taken.lease)  # the retry answers as the first did
    assert plan.lost
    dependant = plain.get(0)
    assert dependant is not None
    assert (dependant.task_id, plain.get_arguments("b")) == ("b", {"a": b"R"})
    assert plain.get(0) is None
    assert plain.pop_result("a", 0) == b"R"
    tq.close()


@pytest.mark.parametrize(
    ("lost", "wait"),
    [("set_result", 0), ("get", 0), ("set_result", 0.005), ("BLMOVE", 0.005), ("get", 0.005)],
)
def test_lost_reply_of_finishing_and_taking_the_next(
    url: str, plain: TaskQueue, lost: str, wait: float
) -> None:
    """set_result_and_get, any reply of its pipelined round trip lost (with a wait, the
    BLMOVE's too): the retry stores the result once and hands back the next task under
    the same lease."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    assert plain.defer_task("c", b"C", ["a"], keep_result=True) is DeferResult.STORED
    plain.enqueue_task("b", b"B", keep_result=True, track=True)
    plan = Plan(command(lost, plain.keys.queue) if lost == "BLMOVE" else script(lost))
    tq = TaskQueue(url, redis_factory=losing(plan))
    plan.armed.clear()
    a = tq.get(0)
    assert a is not None
    assert a.task_id == "a"
    plan.armed.set()
    stored, b = tq.set_result_and_get("a", b"R", 60, a.lease, wait)
    assert plan.lost
    assert stored
    assert b is not None
    assert (b.task_id, b.attempt) == ("b", 1)
    assert tq.renew_lease("b", 60, b.lease)
    c = plain.get(0)  # the dependant, queued once, with the result handed over once
    assert c is not None
    assert (c.task_id, plain.get_arguments("c")) == ("c", {"a": b"R"})
    assert plain.get(0) is None
    assert plain.pop_result("a", 0) == b"R"
    tq.close()


def test_scripts_flushed_while_finishing_and_waiting(url: str, plain: TaskQueue) -> None:
    """set_result_and_get with a wait on a server that forgot the scripts: both are
    refused (NOSCRIPT) while the BLMOVE between them moves the next id to the claimed
    list; sent again, the result is stored once and that task taken from there."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    plain.enqueue_task("b", b"B", keep_result=True, track=True)
    a = plain.get(0)
    assert a is not None
    plain.redis.script_flush()
    stored, b = plain.set_result_and_get("a", b"R", 60, a.lease, 0.005)
    assert stored
    assert b is not None
    assert (b.task_id, b.attempt) == ("b", 1)
    assert plain.redis.llen(plain.keys.claimed) == 0
    assert plain.get(0) is None
    assert plain.pop_result("a", 0) == b"R"


def test_lost_reply_of_finishing_from_outside_never_finishes_a_new_task(
    url: str, plain: TaskQueue
) -> None:
    """set_result without a lease, reply lost: the retry answers True, and leaves alone a
    task sent under the same id in between."""

    def resend() -> None:
        assert plain.pop_result("job", 0) == b"expired"
        assert plain.enqueue_task("job", b"again", keep_result=True, track=True)

    plain.enqueue_task("job", b"first", keep_result=True, track=True)
    plan = Plan(script("set_result"), meanwhile=resend)
    tq = lossy(url, plan)
    assert tq.set_result("job", b"expired", 60)
    assert plan.lost
    assert plain.get_status("job") == TaskStatus.ENQUEUED  # the new task is untouched
    taken = plain.get(0)
    assert taken is not None
    assert taken.message == b"again"
    tq.close()


@pytest.mark.parametrize("one", [False, True])
def test_lost_reclaim_reply_hands_back_the_same_leases(
    url: str, plain: TaskQueue, one: bool
) -> None:
    """The retry of a reclaim (sweep or one task) returns the tasks it took over."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    first = plain.get(0)
    assert first is not None
    assert plain.set_task_timeout("a", 0.01, first.lease)
    eventually(lambda: plain.get_status("a"), TaskStatus.LAPSED)
    plan = Plan(script("reclaim"))
    tq = lossy(url, plan)
    reclaimed = [tq.reclaim_task("a")] if one else tq.reclaim(10)
    assert plan.lost
    assert [t.task_id if t else None for t in reclaimed] == ["a"]
    assert reclaimed[0] is not None
    assert reclaimed[0].lease != first.lease
    assert tq.set_task_timeout("a", 60, reclaimed[0].lease)
    assert plain.reclaim(10) == []
    tq.close()


# -- outages and strange replies ----------------------------------------------


class Unreachable(redis.Connection):
    """A connection whose every attempt to connect fails as if the network were down."""

    attempts = 0

    def connect(self) -> None:
        type(self).attempts += 1
        raise redis.exceptions.ConnectionError("network is down (injected by the test)")


def test_persistent_outage_raises_backend_unavailable_in_bounded_time(url: str) -> None:
    """A server that never answers: every retry is made, then BackendUnavailable, in ~2 s."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    tq = TaskQueue(
        f"redis://:s3cret@127.0.0.1:{port}/0", "billing", redis_factory=client_class(Unreachable)
    )
    Unreachable.attempts = 0
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as raised:
        tq.enqueue_task("a", b"A", keep_result=True, track=True)
    elapsed = time.monotonic() - started
    assert Unreachable.attempts == len(RETRY_DELAYS) + 1
    assert sum(RETRY_DELAYS) * 0.9 <= elapsed < sum(RETRY_DELAYS) + 2
    message = str(raised.value)
    assert message.startswith(
        f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0 (queue 'billing'): "
    )
    assert "s3cret" not in message
    tq.close()


def test_stopped_server_raises_backend_unavailable_and_a_restart_is_ridden_out(
    tmp_path: Path,
) -> None:
    """With the server down a call fails within the retry window; back in time, it succeeds."""
    server = RedisServer(tmp_path)
    server.start()
    refused = threading.Event()

    class Watched(redis.Connection):
        """Tells the test when a connection was refused."""

        def connect(self) -> None:
            try:
                super().connect()  # type: ignore[no-untyped-call]  # untyped in redis-py
            except redis.exceptions.ConnectionError:
                refused.set()
                raise

    tq = TaskQueue(server.url, redis_factory=client_class(Watched))
    try:
        assert tq.ping()
        server.stop()
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="queue 'default'"):
            tq.size()
        assert time.monotonic() - started < sum(RETRY_DELAYS) + 2
        refused.clear()
        stored: list[bool] = []
        sender = threading.Thread(
            target=lambda: stored.append(tq.enqueue_task("a", b"A", keep_result=True, track=True))
        )
        sender.start()
        assert refused.wait(WAIT)
        server.start()
        sender.join(WAIT)
        assert stored == [True]
        assert tq.size() == 1
    finally:
        tq.close()
        server.stop()


class Garbled(Recording):
    """A connection on which worq's scripts all answer ``reply`` (set per test)."""

    reply: object = None

    def answer(self, command: tuple[Any, ...], reply: Any) -> Any:
        return type(self).reply if command and command[0] == "EVALSHA" else reply


@pytest.mark.parametrize(
    ("call", "reply"),
    [
        (lambda tq: tq.get(0), [b"task", b"a"]),
        (lambda tq: tq.get(0), 42),
        (lambda tq: tq.get(0), [b"", b"A", 1, b"1"]),
        (lambda tq: tq.pop_result("a", 0), [b"ready"]),
        (lambda tq: tq.pop_result("a", 0), None),
        (lambda tq: tq.enqueue_task("a", b"A", keep_result=True, track=True), b"x"),
        (lambda tq: tq.defer_task("a", b"A", ["b"], keep_result=True), b"maybe"),
        (lambda tq: tq.reclaim(10), [b"a", b"A", 1]),
        (lambda tq: tq.size(), None),
        (lambda tq: tq.discard_pending(), [1]),
        (lambda tq: tq.set_task_timeout("a", 1), [1]),
        (lambda tq: tq.get_status("a"), 7),
    ],
)
def test_unexpected_script_reply_is_a_worq_error(
    url: str, call: Callable[[TaskQueue], object], reply: object
) -> None:
    """A reply of the wrong shape raises a WorqError naming the queue, never a TypeError."""
    Garbled.reply = reply
    tq = TaskQueue(url, "odd", redis_factory=client_class(Garbled))
    with pytest.raises(WorqError, match="queue 'odd' an unexpected reply") as raised:
        call(tq)
    assert not isinstance(raised.value, BackendUnavailable)
    tq.close()


# -- calls given up during an outage ------------------------------------------


def test_a_get_given_up_is_picked_up_by_the_next_get_of_its_thread(
    url: str, plain: TaskQueue
) -> None:
    """Every reply of a get lost (BackendUnavailable): the thread's next get has its task."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    plan = Plan(script("get"), times=len(RETRY_DELAYS) + 1)
    tq = lossy(url, plan)
    with pytest.raises(BackendUnavailable):
        tq.get(0)
    taken = tq.get(0)
    assert taken is not None
    assert (taken.task_id, taken.attempt) == ("a", 1)
    assert tq.set_task_timeout("a", 60, taken.lease)
    tq.close()


def test_a_wait_given_up_is_picked_up_by_the_next_wait_on_its_task(
    url: str, plain: TaskQueue
) -> None:
    """Every reply of a take lost (BackendUnavailable): waiting again still gets the result."""
    plain.enqueue_task("a", b"A", keep_result=True, track=True)
    finished(plain, "a")
    plan = Plan(script("pop_result"), times=len(RETRY_DELAYS) + 1)
    tq = lossy(url, plan)
    with pytest.raises(BackendUnavailable):
        tq.pop_result("a", 0)
    assert plain.pop_result("a", 0) is TaskStatus.EXPIRED  # taken, by the client that waited
    assert tq.pop_result("a", 0) == b"R"
    tq.close()


def test_a_send_given_up_is_picked_up_by_sending_the_same_id_again(
    url: str, inspect: redis.Redis
) -> None:
    """Every reply of an enqueue lost (BackendUnavailable): sending it again is no duplicate."""
    plan = Plan(script("enqueue"), times=len(RETRY_DELAYS) + 1)
    tq = lossy(url, plan)
    with pytest.raises(BackendUnavailable):
        tq.enqueue_task("a", b"A", keep_result=True, track=True)
    assert tq.enqueue_task("a", b"A", keep_result=True, track=True)
    assert inspect.lrange("worq:{default}:queue", 0, -1) == [b"a"]
    tq.close()
