"""mypy checks a schedule's arguments against its task and its policies (see test_typing.py)."""

from __future__ import annotations

from decimal import Decimal

from tests.typing.shop_tasks import price, total
from worq import get_broker

broker = get_broker("memory://typing-schedules")
broker.schedule(price, every=10, args=(1,))  # E: arg-type
broker.schedule(total, every=10, args=([Decimal(1)],))  # E: arg-type
broker.schedule(price, every=10)  # E: arg-type
broker.schedule(price, every=10, args=("A-1",), catch_up="never")  # E: call-overload
broker.schedule(price, every=10, args=("A-1",), overlap="queue")  # E: call-overload
broker.schedule(price, every="10", args=("A-1",))  # E: call-overload
