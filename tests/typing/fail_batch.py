"""mypy checks map/starmap items against the task and types their Deferreds (see test_typing.py)."""

from __future__ import annotations

from decimal import Decimal

from tests.typing.shop_tasks import price, total
from worq import Deferred, get_queue, wait_all

q = get_queue("memory://")
q.map(price, [1, 2])  # E: arg-type
q.map(total, [[Decimal(1)]])  # E: arg-type
q.starmap(total, [([Decimal(1)], "0.2")])  # E: arg-type
q.starmap(total, [([Decimal(1)],)])  # E: arg-type
q.starmap(price, ["A-1"])  # E: list-item
wrong: list[Deferred[str]] = q.map(price, ["A-1"])  # E: arg-type
fire = get_queue("memory://", ignore_result=True)
fire.map(price, ["A-1"])[0].wait(1)  # E: index
late: str = wait_all(q.map(price, ["A-1"]), 1).done[0].value  # E: assignment
