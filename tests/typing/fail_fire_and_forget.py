"""mypy knows a fire-and-forget queue's calls return None (see tests/test_typing.py)."""

from __future__ import annotations

from decimal import Decimal

from tests.typing.shop_tasks import price
from worq import Deferred, Task, get_queue

fire = get_queue("memory://", ignore_result=True)
kept: Deferred[Decimal] = fire.submit(price, "A-1")  # E: assignment
fire.shop.price("A-1").wait(1)  # E: attr-defined
fire.submit(price, 42)  # E: arg-type
Task(fire.func)(1).wait(1)  # E: attr-defined
