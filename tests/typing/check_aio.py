"""Static checks of the async client's typed API: mypy reads this file, pytest never runs it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, assert_type

from tests.typing.shop_tasks import price, stock, total
from worq.aio import AsyncDeferred, AsyncQueue, get_queue
from worq.const import TaskStatus


async def check_submit_and_await() -> None:
    aq = get_queue("memory://")
    assert_type(aq, AsyncQueue[AsyncDeferred[Any]])
    p1 = await aq.submit(price, "A-1")
    assert_type(p1, AsyncDeferred[Decimal])
    s = await aq.submit(stock, "A-1")
    assert_type(s, AsyncDeferred[int])
    assert_type(await s, int)
    assert_type(await p1, Decimal)
    assert_type(await p1.wait(1.0), bool)
    assert_type(await p1.status(), TaskStatus | None)
    assert_type(p1.value, Decimal)


async def check_typed_dag() -> None:
    aq = get_queue("memory://")
    first = await aq.submit(price, "A-1")
    bill = await aq.submit(
        total, [first.as_arg(), (await aq.submit(price, "B")).as_arg()], Decimal(0)
    )
    assert_type(bill, AsyncDeferred[Decimal])
    values = await asyncio.gather(first, bill)
    assert_type(values, tuple[Decimal, Decimal])


async def check_batches_and_paths() -> None:
    aq = get_queue("memory://")
    assert_type(await aq.map(stock, ["a", "b"]), list[AsyncDeferred[int]])
    assert_type(await aq.starmap(total, [([Decimal(1)], Decimal(0))]), list[AsyncDeferred[Decimal]])
    assert_type(await aq.shop.price("A-1"), AsyncDeferred[Any])
    fire = get_queue("memory://", ignore_result=True)
    assert_type(fire, AsyncQueue[None])
    by_id = AsyncDeferred(aq, "some-id", "shop.price")
    assert_type(by_id, AsyncDeferred[Any])
