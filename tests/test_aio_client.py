"""The async client (worq.aio) on memory:// and Redis, with every pool and sync client."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis

from tests import process_tasks
from tests.outcomes import outcome
from worq import (
    BackendUnavailable,
    Deferred,
    DependencyUnavailable,
    DuplicateTask,
    SerializationError,
    TaskExpired,
    TaskFailure,
    TaskSpace,
    get_broker,
    get_queue,
)
from worq.aio import AsyncDeferred, AsyncQueue
from worq.aio import get_queue as get_async_queue
from worq.pool.asyncio import WorkerPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.queue._redis_keys import RedisKeys
from worq.testing import WAIT, free_port

ts = TaskSpace("shop")
GO = threading.Event()
"""Lets the blocked tasks go on."""


@ts.task
async def price(sku: str) -> Decimal:
    await asyncio.sleep(0)
    return Decimal(len(sku)) / 4


@ts.task
def total(prices: list[Decimal], vat: Decimal) -> Decimal:
    return sum(prices, Decimal(0)) * (1 + vat)


@ts.task
def held(number: int) -> int:
    GO.wait(WAIT)
    return number


@ts.task
async def broken() -> None:
    raise ValueError("out of stock")


@pytest.fixture
def pool(url: str) -> Iterator[WorkerPool]:
    """An asyncio pool on ``url`` running the shop tasks."""
    GO.clear()
    broker = get_broker(url)
    broker.expose(ts)
    started = WorkerPool(broker, concurrency=50)
    started.start(timeout=0.1)
    yield started
    GO.set()
    started.stop()


def run(coroutine: object) -> object:
    return asyncio.run(asyncio.wait_for(coroutine, WAIT))  # type: ignore[arg-type]  # any coroutine


def test_submit_await_and_a_typed_dag(url: str, pool: WorkerPool) -> None:
    async def main() -> tuple[Decimal, Decimal, int]:
        async with get_async_queue(url) as aq:
            first = await aq.submit(price, "A-1")
            second = await aq.submit(price, "B-77")
            bill = await aq.submit(total, [first.as_arg(), second.as_arg()], Decimal("0.5"))
            value = await bill
            dynamic = await aq.shop.price("XY")
            return value, await dynamic, len(await asyncio.gather(first, second))

    assert run(main()) == (Decimal("2.625"), Decimal("0.5"), 2)


def test_failures_raise_on_await_and_wait_reports_a_timeout(url: str, pool: WorkerPool) -> None:
    async def main() -> None:
        async with get_async_queue(url) as aq:
            failing = await aq.submit(broken)
            with pytest.raises(TaskFailure, match="ValueError: out of stock"):
                await failing
            assert await failing.status() == "failed"
            slow = await aq.submit(held, 1)
            assert await slow.wait(0.05) is False
            GO.set()
            assert await slow.wait(WAIT) is True
            assert slow.value == 1
            assert await slow.status() == "success"

    run(main())


def test_batches_and_as_completed(url: str, pool: WorkerPool) -> None:
    async def main() -> None:
        async with get_async_queue(url) as aq:
            prices = await aq.map(price, ["a", "bb", "ccc", "dddd"])
            sums = await aq.starmap(total, [([Decimal(1)], Decimal(0)), ([], Decimal(1))])
            seen = [await done for done in asyncio.as_completed(prices)]
            assert sorted(seen) == [Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal(1)]
            assert [await s for s in sums] == [Decimal(1), Decimal(0)]

    run(main())


def test_sync_and_async_clients_interoperate(url: str, pool: WorkerPool) -> None:
    sent_sync = get_queue(url).submit(price, "four")

    async def main() -> str:
        async with get_async_queue(url) as aq:
            assert await AsyncDeferred(aq, sent_sync.id, sent_sync.name) == Decimal(1)
            sent = await aq.submit(price, "eight!!!")
            return sent.id

    task_id = run(main())
    assert isinstance(task_id, str)
    assert outcome(Deferred(get_broker(url), task_id, "shop.price")) == 2


def test_cancelling_a_wait_leaves_the_task_and_the_client_alone(url: str, pool: WorkerPool) -> None:
    """A cancelled await (or a wait_for timing out) never cancels the task; its
    outcome comes to the next wait, and the client goes on working."""

    async def main() -> None:
        async with get_async_queue(url) as aq:
            slow = await aq.submit(held, 7)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(slow, 0.05)
            waiting = asyncio.ensure_future(slow.wait(WAIT))
            await asyncio.sleep(0)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert await slow.status() == "processing"
            assert await (await aq.submit(price, "ab")) == Decimal("0.5")
            GO.set()
            assert await slow == 7

    run(main())


def test_ten_thousand_concurrent_awaits_share_two_connections(clean_redis_url: str) -> None:
    """10,000 awaits in one process; the results come in one burst from outside.

    The async client's connections carry a name of their own, so the
    server tells how many it made: one for commands (pipelined), one for
    the notifications.
    """
    url = clean_redis_url
    async_url = f"{url}?client_name=worq-aio-test"
    count = 10_000

    async def main() -> list[int]:
        async with get_async_queue(async_url) as aq:
            sent = await aq.map(held, range(count))
            waits = [asyncio.ensure_future(d.wait(WAIT)) for d in sent]
            ids = [d.id for d in sent]
            deadline = time.monotonic() + WAIT
            while not await asyncio.to_thread(_all_waited_on, url, ids):  # every wait began
                assert time.monotonic() < deadline, "the waits did not all begin"
                await asyncio.sleep(0.01)
            await asyncio.to_thread(_finish_from_outside, url, ids)
            assert all(await asyncio.gather(*waits))
            used.extend(await asyncio.to_thread(_connections_named, url, "worq-aio-test"))
            return [d.value for d in sent]

    used: list[str] = []
    assert run(main()) == list(range(count))
    print(f"\n{count} concurrent awaits used {len(used)} connections: {used}")
    assert 1 <= len(used) <= 2


def _connections_named(url: str, name: str) -> list[str]:
    """The last command of each connection to the server with that client name."""
    client = redis.Redis.from_url(url)
    try:
        return [c["cmd"] for c in client.client_list() if c["name"] == name]
    finally:
        client.close()


def _all_waited_on(url: str, task_ids: list[str]) -> bool:
    """Every task's hash names the channel of a waiting async client (its wait polled)."""
    client = redis.Redis.from_url(url)
    try:
        keys = RedisKeys.for_queue("default")
        pipe = client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hexists(keys.task(task_id), "notify")
        return all(pipe.execute())
    finally:
        client.close()


def _finish_from_outside(url: str, task_ids: list[str]) -> None:
    """Store each task's number as its result, pipelined, as a worker would."""
    broker = get_broker(url)
    tq = broker.taskqueue
    calls = [
        tq._set_result_call(task_id, broker.serialize(number), 60, "")  # type: ignore[attr-defined]  # the Redis backend's
        for number, task_id in enumerate(task_ids)
    ]
    assert all(tq._run_pipelined(calls))  # type: ignore[attr-defined]  # the Redis backend's
    broker.close()


def test_bad_input_names_the_task_and_sends_nothing(url: str) -> None:
    async def main() -> None:
        async with get_async_queue(url) as aq:
            with pytest.raises(SerializationError, match=r"cannot send task 'shop.held'"):
                await aq.submit(held, object())  # type: ignore[call-overload]  # the error tested
            fixed = get_async_queue(url, id="same")
            await fixed.submit(held, 1)
            with pytest.raises(DuplicateTask):
                await fixed.submit(held, 2)
            gone = AsyncDeferred(aq, "no-such-task", "shop.held")
            with pytest.raises(DependencyUnavailable, match="no-such-task"):
                await aq.submit(total, [gone.as_arg()], Decimal(0))
            await fixed.aclose()

    run(main())
    assert len(get_queue(url)) == 1


def test_a_lapsed_lease_is_settled_by_the_waiter(url: str) -> None:
    """A task whose worker vanished (its lease lapsed) ends as TaskExpired for its waiter."""
    broker = get_broker(url, initial_result_timeout=0.1)

    async def main() -> None:
        async with get_async_queue(url) as aq:
            sent = await aq.submit(held, 1)
            assert broker.take(WAIT) is not None  # the run of a worker that then vanished
            with pytest.raises(TaskExpired, match="its lease lapsed"):
                await sent

    run(main())


def test_fire_and_forget_queue_returns_none(url: str, pool: WorkerPool) -> None:
    async def main() -> None:
        async with get_async_queue(url, ignore_result=True) as aq:
            assert await aq.submit(price, "x") is None  # type: ignore[func-returns-value]  # None, as typed
            assert await aq.map(price, ["y"]) is None  # type: ignore[func-returns-value]  # None, as typed

    run(main())


def test_a_queue_serves_one_loop_at_a_time(url: str, pool: WorkerPool) -> None:
    """Closed at the end of each loop, a queue serves the next; else Redis says why not."""

    async def once(aq: AsyncQueue[AsyncDeferred[Any]], close: bool) -> Decimal:
        value = await (await aq.submit(price, "abcd"))
        if close:
            await aq.aclose()
        return value

    aq = get_async_queue(url)
    assert run(once(aq, close=True)) == Decimal(1)
    assert run(once(aq, close=False)) == Decimal(1)  # a new loop: new connections
    if url.startswith("memory://"):
        assert run(once(aq, close=True)) == Decimal(1)  # no connections to lose
        return
    with pytest.raises(RuntimeError, match=r"used again after the event loop it ran on closed"):
        run(once(aq, close=True))
    with warnings.catch_warnings():  # the connections that died with their loop, as warned
        warnings.simplefilter("ignore", ResourceWarning)
        del aq
        gc.collect()

    other = get_async_queue(url)
    entered, leave = threading.Event(), threading.Event()

    async def hold() -> None:
        async with other:
            await other.submit(price, "a")
            entered.set()
            await asyncio.to_thread(leave.wait, WAIT)

    async def meanwhile() -> None:
        await other.submit(price, "b")

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        assert entered.wait(WAIT)
        with pytest.raises(RuntimeError, match="two running event loops at once"):
            run(meanwhile())
    finally:
        leave.set()
        holder.join()


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_tasks_sent_from_async_code_run_in_every_pool(url: str, kind: str) -> None:
    pool: ThreadPool | ProcessPool
    if kind == "thread":
        pool = ThreadPool(process_tasks.init(url), workers=2)
        pool.start(timeout=0.1)
    else:
        pool = ProcessPool(process_tasks.init(url), process_tasks.init, workers=1)
        pool.start(timeout=0.2, handle_sigterm=False)

    async def main() -> list[int]:
        async with get_async_queue(url) as aq:
            summed = await aq.submit(process_tasks.add, [1, 2])
            awaited = await aq.submit(process_tasks.async_add, [summed.as_arg(), 4])
            return [await summed, await awaited]

    try:
        assert run(main()) == [3, 7]
    finally:
        pool.stop()


def test_an_unreachable_redis_is_named() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    async def main() -> None:
        async with get_async_queue(url) as aq:
            with pytest.raises(BackendUnavailable, match=rf"cannot reach Redis at {url}"):
                await aq.submit(price, "A-1")

    run(main())


def test_connections_killed_under_load_lose_and_double_nothing(clean_redis_url: str) -> None:
    """The async client's connections are killed again and again (CLIENT KILL) while
    it sends 300 tasks and awaits them: each is stored once and its result comes once.

    Cut calls are sent again under their request tokens (a lost reply's step is not
    done twice), and the notification channel is subscribed again, waking every wait.
    """
    url = clean_redis_url
    name = "worq-aio-killed"
    broker = get_broker(url)
    broker.expose(ts)
    pool = WorkerPool(broker, concurrency=20)
    pool.start(timeout=0.1)
    stop = threading.Event()
    killed: list[int] = []

    def kill() -> None:
        admin = redis.Redis.from_url(url)
        try:
            while not stop.wait(0.01):
                for client in admin.client_list():
                    if client["name"] == name:
                        killed.append(admin.client_kill_filter(_id=client["id"]))
        finally:
            admin.close()

    async def main() -> list[Decimal]:
        async with get_async_queue(f"{url}?client_name={name}") as aq:
            sent = [await aq.submit(price, "x" * n) for n in range(300)]
            return list(await asyncio.gather(*sent))

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        values = run(main())
    finally:
        stop.set()
        killer.join()
        pool.stop()
    assert values == [Decimal(n) / 4 for n in range(300)]
    print(f"\nconnections killed: {sum(killed)}")
    assert sum(killed) >= 3
    assert len(get_queue(url)) == 0


def test_scripts_the_server_forgot_are_loaded_again(clean_redis_url: str) -> None:
    """After SCRIPT FLUSH (a restarted server, say) the next calls load the scripts
    again, on the client's own connection, and go through."""
    url = clean_redis_url
    admin = redis.Redis.from_url(url)

    async def main() -> str:
        async with get_async_queue(url) as aq:
            await aq.submit(held, 1)
            await asyncio.to_thread(admin.script_flush)
            second = await aq.submit(held, 2)
            return str(await second.status())

    try:
        assert run(main()) == "enqueued"
        assert len(get_queue(url)) == 2
    finally:
        admin.close()


def test_a_connection_made_while_the_node_is_turned_away_is_not_kept(
    clean_redis_url: str,
) -> None:
    """The notification listener may turn the node away (a failover) while a command
    connection is being made: that connection's client is closed, so the connection is
    dropped and one made from the next client; closing the queue then hands no connection
    back to a pool it is not from (a failover test met this as a KeyError)."""
    url = clean_redis_url

    async def main() -> None:
        async with get_async_queue(url) as aq:
            connections = aq.broker.taskqueue._connections()  # type: ignore[attr-defined]  # the Redis backend's
            first = await connections._client()
            made = first.connection_pool.get_connection

            async def turned_away_meanwhile(*args: Any, **kwargs: Any) -> Any:
                conn = await made(*args, **kwargs)
                await connections._turned_away()  # as the listener does on a failover
                return conn

            first.connection_pool.get_connection = turned_away_meanwhile
            sent = await aq.submit(held, 7)
            current = await connections._client()
            assert current is not first
            assert connections._conn in current.connection_pool._in_use_connections
        assert get_broker(url).taskqueue.size() == 1
        assert sent.id

    run(main())
