"""mypy must reject every line marked with an expected error code (see tests/test_typing.py)."""

from __future__ import annotations

from tests.typing.shop_tasks import price
from worq import Task, get_queue

q = get_queue("memory://")
q.submit(price, 42)  # E: arg-type
q.submit(price)  # E: call-arg
q.submit(price, "A-1", colour="red")  # E: call-arg
wrong: str = q.submit(price, "A-1").value  # E: assignment
Task(q, retries=3).submit(price, 42)  # E: arg-type
also_wrong: str = Task(q, id="x").submit(price, "A-1").value  # E: assignment
