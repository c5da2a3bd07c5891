"""mypy must reject every line marked with an expected error code (see tests/test_typing.py)."""

from __future__ import annotations

from tests.typing.shop_tasks import price, stock
from worq.aio import get_queue


async def wrong() -> None:
    aq = get_queue("memory://")
    await aq.submit(price, 42)  # E: call-overload
    await aq.submit(stock)  # E: call-overload
    d = await aq.submit(stock, "A-1")
    wrong_type: str = await d  # E: assignment
    await aq.map(stock, [1, 2])  # E: arg-type
