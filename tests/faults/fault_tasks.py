"""Tasks for the fault-injection suite; spawned workers import this module.

Every run of ``work`` records itself in the Redis list ``runs`` before doing
anything else, so that the suite can count how often each task ran.
"""

from __future__ import annotations

import redis

from worq import TaskSpace, get_broker
from worq.core import Broker

ts = TaskSpace("fault")

LEASE = 1.0
"""Initial lease of the fault suite's brokers: lost workers are noticed fast."""

_clients: dict[str, redis.Redis] = {}


def _client(url: str) -> redis.Redis:
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=None)
    return client


@ts.task
def work(url: str, n: int, hold: float) -> int:
    """Record the run, hold the worker ``hold`` seconds (a blocking wait), return 2n."""
    client = _client(url)
    client.rpush("runs", n)
    if hold > 0:
        client.blpop(["never"], timeout=hold)
    return 2 * n


def init(url: str, queue: str = "default") -> Broker:
    """Worker init: short leases, the fault tasks exposed on ``queue``."""
    broker = get_broker(url, queue, initial_result_timeout=LEASE)
    broker.expose(ts)
    return broker
