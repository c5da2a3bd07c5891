"""Static checks of worq's typed API: mypy reads this file, pytest never runs it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, assert_type

import attrs

import worq
from worq import Deferred, Task, TaskSpace, get_queue
from worq.const import TaskStatus

ts = TaskSpace("shop")


@attrs.frozen
class Point:
    x: int
    y: int


@ts.task
def price(sku: str) -> Decimal:
    return Decimal("1.5")


@ts.task
def total(prices: list[Decimal], vat: Decimal) -> Decimal:
    return sum(prices, Decimal(0)) * (1 + vat)


@ts.task
def move(p: Point, dx: int = 1) -> Point:
    return Point(p.x + dx, p.y)


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


def check_decorator_keeps_signature() -> None:
    assert_type(price("x"), Decimal)
    assert_type(move(Point(0, 0)), Point)
