"""The periodic task of the schedule fault test; each pool process imports this module.

``beat`` records each run in the Redis list ``beats``; ``init`` declares its
one-second schedule on the broker every pool builds.
"""

from __future__ import annotations

from tests.faults.fault_tasks import LEASE, _client
from worq import TaskSpace, get_broker
from worq.core import Broker

ts = TaskSpace("periodic")


@ts.task
def beat(url: str) -> None:
    """Record one run."""
    _client(url).rpush("beats", 1)


def init(url: str) -> Broker:
    """A pool's broker: short leases, ``beat`` exposed and scheduled every second."""
    broker = get_broker(url, initial_result_timeout=LEASE)
    broker.expose(ts)
    # overlap="allow": with the default "skip", a second whose previous task the
    # killed pool held (its lease not lapsed yet) would rightly send nothing.
    broker.schedule(beat, every=1, args=(url,), overlap="allow")
    return broker
