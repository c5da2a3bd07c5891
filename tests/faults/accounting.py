"""Account for every task of a fault run: exactly one outcome each, runs counted."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import attrs
import redis

from worq import BackendUnavailable, Deferred, TaskExpired, TaskFailure

DEADLINE = 120.0
"""Seconds the accounting may wait for any one outcome."""


@attrs.define
class Ledger:
    """The outcome of each task number, and how often each ran."""

    outcomes: dict[int, str] = attrs.Factory(dict)
    errors: dict[int, str] = attrs.Factory(dict)
    runs: collections.Counter[int] = attrs.Factory(collections.Counter)

    def summary(self) -> str:
        kinds = collections.Counter(self.outcomes.values())
        ran_again = sum(1 for count in self.runs.values() if count > 1)
        return (
            f"tasks={len(self.outcomes)} "
            + " ".join(f"{kind}={kinds[kind]}" for kind in sorted(kinds))
            + f" runs={sum(self.runs.values())} ran_more_than_once={ran_again}"
        )


def settle(
    url: str, results: Sequence[tuple[int, Deferred[Any]]], *, ride_out_outages: bool = False
) -> Ledger:
    """Wait for every result and classify it; count runs per task number from Redis.

    Args:
        url: The Redis server the runs are recorded on.
        ride_out_outages: Wait again when a wait gives up with BackendUnavailable
            (a cluster failing over), as an application would.
    """
    ledger = Ledger()
    for n, deferred in results:
        if not _wait(deferred, ride_out_outages):
            ledger.outcomes[n] = "missing"
            continue
        try:
            value = deferred.value
        except TaskExpired:
            ledger.outcomes[n] = "expired"
        except TaskFailure as failure:
            ledger.outcomes[n] = "failed"
            ledger.errors[n] = failure.error
        else:
            ledger.outcomes[n] = "succeeded" if value == 2 * n else "wrong"
    client = redis.Redis.from_url(url)
    try:
        ledger.runs.update(int(n) for n in client.lrange("runs", 0, -1))
    finally:
        client.close()
    return ledger


def _wait(deferred: Deferred[Any], ride_out_outages: bool) -> bool:
    while True:
        try:
            return deferred.wait(DEADLINE)
        except BackendUnavailable:
            if not ride_out_outages:
                raise


def check(ledger: Ledger, count: int, retries: int, *, all_succeed: bool) -> None:
    """Exactly one outcome per task, none lost; none ran more often than retries allow."""
    print(f"\naccounting: {ledger.summary()}")
    assert len(ledger.outcomes) == count, ledger.summary()
    bad = {n: o for n, o in ledger.outcomes.items() if o in ("missing", "wrong", "failed")}
    assert bad == {}, (bad, ledger.errors, ledger.summary())
    if all_succeed:
        assert set(ledger.outcomes.values()) == {"succeeded"}, ledger.summary()
    unrun = [n for n, o in ledger.outcomes.items() if o == "succeeded" and ledger.runs[n] < 1]
    assert unrun == [], unrun
    too_often = {n: c for n, c in ledger.runs.items() if c > retries + 1}
    assert too_often == {}, too_often
