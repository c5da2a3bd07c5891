"""mypy must reject every line marked with an expected error code (see tests/test_typing.py)."""

from __future__ import annotations

from decimal import Decimal

from worq import Task, TaskSpace, get_queue

ts = TaskSpace("shop")


@ts.task
def price(sku: str) -> Decimal:
    return Decimal("1.5")


q = get_queue("memory://")
q.submit(price, 42)  # E: arg-type
q.submit(price)  # E: call-arg
q.submit(price, "A-1", colour="red")  # E: call-arg
wrong: str = q.submit(price, "A-1").value  # E: assignment
Task(q, retries=3).submit(price, 42)  # E: arg-type
also_wrong: str = Task(q, id="x").submit(price, "A-1").value  # E: assignment
