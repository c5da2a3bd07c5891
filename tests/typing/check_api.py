"""Static checks of worq's typed API: mypy reads this file, pytest never runs it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, assert_type

import worq
from tests.typing.shop_tasks import Point, move, price, total
from worq import Deferred, Queue, Task, get_broker, get_queue
from worq.const import TaskStatus
from worq.models import SentTask


def check_submit() -> None:
    q = get_queue("memory://")
    p1 = q.submit(price, "A-1")
    assert_type(p1, Deferred[Decimal])
    t = q.submit(total, [p1.as_arg(), q.submit(price, "B").as_arg()], Decimal("0.2"))
    assert_type(t, Deferred[Decimal])
    assert_type(t.value, Decimal)
    assert_type(t.wait(1.0), bool)
    assert_type(t.status, TaskStatus | None)
    m = q.submit(move, Point(1, 2), dx=3)
    assert_type(m.value, Point)


def check_untyped_path() -> None:
    q = get_queue("memory://")
    assert_type(q.shop.price, worq.Queue)
    assert_type(q.shop.price("A-1"), Deferred[Any])


def check_task_handles() -> None:
    q = get_queue("memory://")
    assert_type(Task(q.func)(1), Deferred[Any])
    assert_type(Task(q.func, ignore_result=True)(1), None)
    flag: bool = bool(len(q))
    assert_type(Task(q.func, ignore_result=flag)(1), Deferred[Any] | None)
    assert_type(Task(q.func).with_options({"heartrate": 5}), Task[Deferred[Any] | None])


def check_fire_and_forget_queues() -> None:
    fire = get_queue("memory://", ignore_result=True)
    assert_type(fire, Queue[None])
    assert_type(fire.shop.price, Queue[None])
    assert_type(fire.shop.price("A-1"), None)
    assert_type(fire.submit(price, "A-1"), None)  # sent, typed-checked, nothing to wait on
    assert_type(Task(fire.func)(1), None)
    assert_type(Task(fire.func, ignore_result=False)(1), Deferred[Any])
    broker = get_broker("memory://")
    assert_type(broker.queue(ignore_result=True), Queue[None])
    assert_type(broker.queue(), Queue[Deferred[Any]])
    assert_type(Queue(broker, ignore_result=True), Queue[None])
    assert_type(Queue(broker), Queue[Deferred[Any]])
    flag: bool = bool(len(fire))
    maybe = get_queue("memory://", ignore_result=flag)
    assert_type(maybe, Queue[Deferred[Any] | None])
    assert_type(maybe.submit(price, "A-1"), Deferred[Decimal] | None)
    plain: Queue = get_queue("memory://")  # a bare annotation means an ordinary queue
    assert_type(plain.submit(price, "A-1"), Deferred[Decimal])


def check_per_call_options() -> None:
    q = get_queue("memory://")
    assert_type(Task(q, retries=3, id="nightly").submit(price, "A-1"), Deferred[Decimal])
    assert_type(Task(q.shop, delay=5).submit(move, Point(1, 2), dx=3), Deferred[Point])
    assert_type(Task(q, ignore_result=True).submit(price, "A-1"), None)
    fire = get_queue("memory://", ignore_result=True)
    assert_type(Task(fire, retries=1).submit(price, "A-1"), None)
    assert_type(Task(fire, ignore_result=False).submit(price, "A-1"), Deferred[Decimal])


def check_deferred_task() -> None:
    d = get_queue("memory://").submit(price, "A-1")
    assert_type(d.task, SentTask)
    assert_type(d.task.args, tuple[Any, ...] | None)
    assert_type(Deferred(get_broker("memory://"), d), Deferred[Any])
    assert_type(Deferred(get_broker("memory://"), "id", "shop.price"), Deferred[Any])


def check_decorator_keeps_signature() -> None:
    assert_type(price("x"), Decimal)
    assert_type(move(Point(0, 0)), Point)


def check_batches() -> None:
    q = get_queue("memory://")
    prices = q.map(price, ["A-1", "B-2"])
    assert_type(prices, list[Deferred[Decimal]])
    totals = q.starmap(total, [([Decimal(1)], Decimal("0.2")), ([], Decimal(0))])
    assert_type(totals, list[Deferred[Decimal]])
    assert_type(q.starmap(move, [(Point(0, 0),), (Point(1, 1),)]), list[Deferred[Point]])
    assert_type(q.shop.map(price, iter(["C"])), list[Deferred[Decimal]])
    fire = get_queue("memory://", ignore_result=True)
    assert_type(fire.map(price, ["A-1"]), None)
    assert_type(fire.starmap(total, [([], Decimal(0))]), None)
    assert_type(Task(q.shop.price).map(["A-1"]), list[Deferred[Any]])
    assert_type(Task(q.shop.total).starmap([([], 0)]), list[Deferred[Any]])
    assert_type(Task(q.shop.price, ignore_result=True).map(["A-1"]), None)
    collected = worq.wait_all(prices, 1.0)
    assert_type(collected, worq.WaitResult[Deferred[Decimal]])
    assert_type(collected.done, list[Deferred[Decimal]])
    assert_type(collected.not_done[0].value, Decimal)
    mixed: list[Deferred[Any]] = [*prices, q.submit(move, Point(1, 2))]
    done, not_done = worq.wait_all(mixed, None)  # unpacks like concurrent.futures.wait
    assert_type(not_done, list[Deferred[Any]])
    assert_type(done, list[Deferred[Any]])
