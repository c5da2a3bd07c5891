"""What the dashboard shows, read from the backend through brokers, and cached.

Every open page polls the overview; the reads behind it are shared: one
backend read every :data:`REFRESH` seconds however many pages are open. The
per-minute stats of minutes that are over are read once and kept; each
refresh reads just the current and the previous minute (a pool's heartbeat
may still add to the previous one for a couple of seconds). A refresh of one
queue costs a few commands: its counts, its live pools, two minutes of stats.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from worq._backends import get_broker
from worq.const import DEFAULT, FAILED_LIMIT
from worq.core import Broker
from worq.models import FailedTask, TaskInfo
from worq.stats import KEEP_MINUTES, MinuteStats, percentile

__all__ = [
    "GRAPH_SIDE",
    "QUEUES_EVERY",
    "RECENT_MINUTES",
    "REFRESH",
    "Dashboard",
    "GraphNode",
    "shown",
]

REFRESH = 2.0
"""Seconds an overview read is reused for, whatever the number of open pages."""

RECENT_MINUTES = 5
"""The window of the overview's throughput, failure rate and run-time percentiles."""

QUEUES_EVERY = 60.0
"""Seconds the list of queues found at the URL is reused for: finding them scans the
whole key space (Redis SCAN), too much to do at every refresh of a big backend."""

GRAPH_SIDE = 12
"""At most this many tasks are drawn on each side of a task's dependency graph."""

SHOWN_BYTES = 4096
"""Arguments and outcomes are shown up to this many bytes."""


@attrs.frozen
class GraphNode:
    """One task of a dependency graph: its id, name and status ("gone": nothing held)."""

    id: str
    name: str
    status: str


def shown(data: bytes | None) -> str:
    """Stored bytes as the page shows them: the JSON text the codec wrote, cut at
    :data:`SHOWN_BYTES`; a note for bytes that are not text (pickle)."""
    if data is None:
        return ""
    try:
        text = data[:SHOWN_BYTES].decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(data)} bytes, not JSON: pickled?)"
    return text + (f" … ({len(data)} bytes in all)" if len(data) > SHOWN_BYTES else "")


class Dashboard:
    """The backend as the dashboard sees it: one broker per queue, and the reads it shares.

    Args:
        url: The backend's URL.
        queues: The queues to show; None: every queue the backend holds.
    """

    def __init__(self, url: str, queues: Sequence[str] | None = None) -> None:
        self.url = url
        self._fixed = list(queues) if queues else None
        self._brokers: dict[str, Broker] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._overview: dict[str, Any] | None = None
        self._read_at = -float("inf")
        self._settled: dict[str, dict[int, MinuteStats]] = {}
        self._found: list[str] = []
        self._found_at = -float("inf")

    def broker(self, queue: str) -> Broker:
        """The broker of one queue, made once."""
        with self._lock:
            if queue not in self._brokers:
                self._brokers[queue] = get_broker(self.url, queue)
            return self._brokers[queue]

    def queues(self) -> list[str]:
        """The queues shown: those given, else every queue the backend holds (looked
        for again every :data:`QUEUES_EVERY` seconds)."""
        if self._fixed is not None:
            return list(self._fixed)
        with self._lock:
            if time.monotonic() - self._found_at < QUEUES_EVERY:
                return list(self._found)
        found = self.broker(DEFAULT).queue_names() or [DEFAULT]
        with self._lock:
            self._found, self._found_at = found, time.monotonic()
        return list(found)

    def close(self) -> None:
        with self._lock:
            for broker in self._brokers.values():
                broker.close()
            self._brokers.clear()

    # -- overview ----------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """Every queue's counts, recent numbers, chart and live pools (JSON-ready),
        read at most once per :data:`REFRESH` seconds."""
        with self._refreshing:  # one read at a time; the others wait for it and share it
            if time.monotonic() - self._read_at < REFRESH and self._overview is not None:
                return self._overview
            queues = [self._queue_overview(name) for name in self.queues()]
            self._overview = {"queues": queues, "read_at": time.time()}
            self._read_at = time.monotonic()
            return self._overview

    def _queue_overview(self, name: str) -> dict[str, Any]:
        broker = self.broker(name)
        minutes = self._minutes(name, broker)
        recent = minutes[-RECENT_MINUTES:]
        succeeded = sum(m.outcomes.get("succeeded", 0) for m in recent)
        failed = sum(m.outcomes.get("failed", 0) + m.outcomes.get("expired", 0) for m in recent)
        durations = [sum(column) for column in zip(*(m.durations for m in recent), strict=True)]
        ended = succeeded + failed
        return {
            "name": name,
            "counts": {str(state): count for state, count in broker.counts().items()},
            "per_minute": round(ended / RECENT_MINUTES, 1),
            "failure_rate": round(failed / ended, 3) if ended else None,
            "p50_s": percentile(durations, 0.5),
            "p95_s": percentile(durations, 0.95),
            "chart": [
                {
                    "minute": m.minute,
                    "succeeded": m.outcomes.get("succeeded", 0),
                    "failed": m.outcomes.get("failed", 0) + m.outcomes.get("expired", 0),
                }
                for m in minutes
            ],
            "pools": [attrs.asdict(pool) for pool in broker.live_pools()],
        }

    def _minutes(self, name: str, broker: Broker) -> list[MinuteStats]:
        """The last hour's minutes: those over are read once, the last two each time."""
        current = int(time.time() // 60)
        first = current - KEEP_MINUTES + 1
        settled = {m: s for m, s in self._settled.get(name, {}).items() if m >= first}
        unread = [m for m in range(first, current - 1) if m not in settled]
        start = min(unread, default=current - 1)
        read = {s.minute // 60: s for s in broker.stats(current - start + 1)}
        settled.update({m: s for m, s in read.items() if m < current - 1})
        self._settled[name] = settled
        return [settled.get(m) or read[m] for m in range(first, current + 1)]

    # -- tasks -------------------------------------------------------------------

    def find(self, task_id: str, queue: str | None = None) -> TaskInfo | None:
        """A task by id, on ``queue`` or (None) on the first shown queue holding it."""
        for name in [queue] if queue else self.queues():
            info = self.broker(name).inspect(task_id)
            if info is not None:
                return info
        return None

    def graph(self, info: TaskInfo) -> tuple[list[GraphNode], list[GraphNode]]:
        """The task's dependency graph: the tasks it waits on, and those waiting on it."""
        broker = self.broker(info.queue)
        return (
            [self._node(broker, task_id) for task_id in info.refs[:GRAPH_SIDE]],
            [self._node(broker, task_id) for task_id in info.dependants[:GRAPH_SIDE]],
        )

    @staticmethod
    def _node(broker: Broker, task_id: str) -> GraphNode:
        found = broker.inspect(task_id)
        if found is None:
            return GraphNode(task_id, "", "gone")
        return GraphNode(task_id, found.name, found.status)

    # -- failures ----------------------------------------------------------------

    def failed(self, queue: str, task: str = "", error: str = "") -> list[FailedTask]:
        """The queue's failed-task registry, the latest first, filtered by task name
        (a part of it) and error text (a part, any case)."""
        listed = self.broker(queue).failed_tasks(FAILED_LIMIT)
        return list(_matching(listed, task, error))


def _matching(tasks: list[FailedTask], task: str, error: str) -> Iterator[FailedTask]:
    wanted = error.casefold()
    for failed in tasks:
        if task in failed.name and wanted in failed.error.casefold():
            yield failed
