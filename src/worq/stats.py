"""Per-minute counts of a queue's runs, kept in the backend for the last hour.

Every pool counts the runs it ends (by outcome) and how long they took (in
the buckets of :data:`DURATION_BOUNDS`), minute by minute, and adds its
counts to the backend with its heartbeat (see :mod:`worq.pool._presence`),
so that whoever looks (the dashboard, ``Broker.stats``) sees the whole
queue's throughput, failure rate and run times without asking any pool. A
minute's counts are kept :data:`KEEP_MINUTES` minutes; counts a heartbeat
could not deliver (an outage) wait for the next one.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from worq._observations import OUTCOMES, WAITED, Observation
from worq.models import Envelope

__all__ = [
    "DURATION_BOUNDS",
    "KEEP_MINUTES",
    "MinuteStats",
    "PoolStats",
    "percentile",
]

KEEP_MINUTES = 60
"""How many minutes of counts the backend keeps."""

DURATION_BOUNDS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, math.inf,
)  # fmt: skip
"""Upper bounds (seconds) of the run-time buckets: field ``d<i>`` counts the runs that
took at most ``DURATION_BOUNDS[i]`` and more than the bound before it."""


@attrs.frozen(kw_only=True)
class MinuteStats:
    """A queue's runs that ended in one minute, all its pools together.

    Attributes:
        minute: The minute's start (seconds since the epoch, a multiple of 60).
        outcomes: Runs by outcome (``succeeded``, ``failed``, ``retried``,
            ``expired``, ``lease_lost``; absent: none).
        durations: Runs (succeeded or failed) per bucket of :data:`DURATION_BOUNDS`.
    """

    minute: int
    outcomes: Mapping[str, int]
    durations: tuple[int, ...]

    @classmethod
    def from_fields(cls, minute: int, fields: Mapping[str, int]) -> MinuteStats:
        """A minute as the backend stores it: outcome names and ``d<i>`` bucket fields."""
        durations = [0] * len(DURATION_BOUNDS)
        outcomes: dict[str, int] = {}
        for name, count in fields.items():
            if name.startswith("d") and name[1:].isdigit() and int(name[1:]) < len(durations):
                durations[int(name[1:])] += count
            elif name in _OUTCOME_NAMES:
                outcomes[name] = count
        return cls(minute=minute * 60, outcomes=outcomes, durations=tuple(durations))


_OUTCOME_NAMES = frozenset(OUTCOMES.values())
_TIMED = frozenset({"succeeded", "failed"})
"""The outcomes of a run that went to its end, whose time is counted."""
_BUCKET_FIELDS = tuple(f"d{i}" for i in range(len(DURATION_BOUNDS)))
_LAST_BUCKET = len(DURATION_BOUNDS) - 1


def percentile(durations: Sequence[int], fraction: float) -> float | None:
    """The run time under which ``fraction`` of the counted runs finished (the upper
    bound of its bucket: an estimate, like Prometheus's histogram_quantile); None when
    nothing was counted."""
    total = sum(durations)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for bound, count in zip(DURATION_BOUNDS, durations, strict=False):
        seen += count
        if seen >= rank:
            return bound
    return DURATION_BOUNDS[-1]


class PoolStats:
    """One pool's counts since its last heartbeat, by minute.

    Args:
        queue: The pool's queue (events of other queues' tasks are not counted).
    """

    def __init__(self, queue: str) -> None:
        self._queue = queue
        self._lock = threading.Lock()
        self._counts: Counter[tuple[int, str]] = Counter()

    def observe(self, event: str, task: Envelope, fields: dict[str, Any]) -> None:
        """An event observer (see ``worq._events``): count this queue's runs.

        It runs with every event of every task, so it does the least it can:
        other events and other queues' tasks return at once.
        """
        outcome = OUTCOMES.get(event)
        if outcome is None or task.queue != self._queue:
            return
        seconds = fields.get("duration_s") if outcome in _TIMED else None
        self._add(int(time.time() // 60), outcome, seconds)

    def count(self, observations: Iterable[Observation]) -> None:
        """Count runs observed here or in a worker process, in the current minute."""
        minute = int(time.time() // 60)
        for outcome, _, seconds in observations:
            if outcome != WAITED:
                self._add(minute, outcome, seconds)

    def _add(self, minute: int, outcome: str, seconds: object) -> None:
        with self._lock:
            counts = self._counts
            counts[minute, outcome] += 1
            if isinstance(seconds, int | float):
                bucket = min(bisect.bisect_left(DURATION_BOUNDS, seconds), _LAST_BUCKET)
                counts[minute, _BUCKET_FIELDS[bucket]] += 1

    def drain(self) -> dict[tuple[int, str], int]:
        """The counts to send, cleared here (:meth:`restore` them if sending fails)."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts

    def restore(self, counts: Mapping[tuple[int, str], int]) -> None:
        """Put back counts that could not be sent, for the next heartbeat."""
        with self._lock:
            self._counts.update(counts)
