"""Dramatiq: ``RedisBroker`` with the ``Results`` middleware on a ``RedisBackend``."""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from _common import URL_ENV, WAIT, Peer, bin_path
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

# The driver sets the URL before importing this module; the workers inherit it.
broker = RedisBroker(url=os.environ[URL_ENV])
broker.add_middleware(Results(backend=RedisBackend(url=os.environ[URL_ENV])))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True)
def noop(value: int) -> int:
    """The benchmark's task: returns its argument."""
    return value


class DramatiqClient:
    """``noop.send(i)``, then ``message.get_result(block=True, timeout=ms)`` (BRPOPLPUSH)."""

    def submit(self, value: int) -> Any:
        return noop.send(value)

    def wait(self, handle: Any) -> Any:
        return handle.get_result(block=True, timeout=int(WAIT * 1000))

    def close(self) -> None:
        broker.close()


PEER = Peer(
    name="Dramatiq",
    distributions=("dramatiq",),
    workers="`dramatiq peer_dramatiq -p 2 -t 1` (--processes, --threads): a main process "
    "and 2 worker processes, 1 worker thread each",
    commands=lambda: [[bin_path("dramatiq"), "peer_dramatiq", "-p", "2", "-t", "1"]],
    processes=3,
    client=DramatiqClient,
    deviations=(
        "--threads 1 (default 8 per process): the benchmark's 2 workers are 2 processes of "
        "1 thread; the consumer's prefetch follows (default: 2 x threads)",
        "--processes 2 (default: CPU count, which is 2 on this machine: no change here)",
    ),
)
