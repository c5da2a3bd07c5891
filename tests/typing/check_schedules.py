"""mypy accepts every way of declaring a schedule (see test_typing.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import assert_type

from tests.typing.shop_tasks import price, stock, total
from worq import get_broker
from worq.schedules import Schedule

broker = get_broker("memory://typing-schedules")
assert_type(broker.schedule(price, cron="*/5 * * * *", args=("A-1",)), Schedule)
broker.schedule(total, every=dt.timedelta(seconds=10), args=([Decimal(1)], Decimal("0.2")))
broker.schedule(price, every=60, kwargs={"sku": "A-1"}, name="price-by-keyword")
broker.schedule(
    stock, cron="0 9 * * 1-5", tz="Europe/Paris", args=("C-3",), catch_up="all", overlap="allow"
)
broker.schedule("shop.price", every=30, args=("B-2",), name="price-by-name")
