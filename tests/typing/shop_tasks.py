"""The tasks the typing checks (check_api.py, fail_*.py) send: one definition for all."""

from __future__ import annotations

from decimal import Decimal

import attrs

from worq import TaskSpace

__all__ = ["Point", "move", "price", "stock", "total", "ts"]

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


@ts.task
async def stock(sku: str) -> int:
    """An async task: its Deferreds are typed with what it returns once awaited."""
    return len(sku)
