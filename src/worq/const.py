"""Names shared by clients, workers and backends.

Task statuses are members of :class:`TaskStatus`, a ``StrEnum``, so each one
compares equal to its plain string (``worq.const.ENQUEUED == "enqueued"``) and
survives any serializer unchanged.
"""

from __future__ import annotations

import enum

__all__ = [
    "COMPLETED",
    "DEFAULT",
    "DELAYED",
    "ENQUEUED",
    "EXPIRED",
    "FAILED",
    "FAILED_LIMIT",
    "FAILED_TTL",
    "LAPSED",
    "PENDING",
    "PROCESSING",
    "SUCCESS",
    "TERMINAL",
    "TaskStatus",
]

DEFAULT = "default"
"""Name of the queue used when none is given."""

FAILED_LIMIT = 10_000
"""How many failed tasks a queue's failed-task registry keeps by default (the latest)."""
FAILED_TTL = 7 * 24 * 3600.0
"""How long, in seconds, the registry keeps each by default: a week."""


class TaskStatus(enum.StrEnum):
    """Where a task is in its life.

    The first six are what a backend reports; the last three are what a
    :class:`~worq.task.Deferred` reports once it holds the outcome locally.
    """

    PENDING = "pending"
    """Deferred: waiting for the results of the tasks it takes as arguments."""
    DELAYED = "delayed"
    """Sent with a delay or eta, or waiting to be retried: runnable later."""
    ENQUEUED = "enqueued"
    """In the queue, waiting for a worker."""
    PROCESSING = "processing"
    """Taken by a worker, under a lease its heartbeats renew."""
    LAPSED = "lapsed"
    """Taken, but its lease ran out (the worker vanished): about to be retried or expired."""
    COMPLETED = "completed"
    """Finished; the result is stored and has not been fetched yet."""
    SUCCESS = "success"
    """The task returned a value."""
    FAILED = "failed"
    """The task raised, could not be run, or a dependency failed."""
    EXPIRED = "expired"
    """The result vanished before it was fetched (worker lost, or timed out)."""


TERMINAL = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.EXPIRED}
)
"""Statuses after which a task never runs again."""

PENDING = TaskStatus.PENDING
DELAYED = TaskStatus.DELAYED
ENQUEUED = TaskStatus.ENQUEUED
PROCESSING = TaskStatus.PROCESSING
LAPSED = TaskStatus.LAPSED
COMPLETED = TaskStatus.COMPLETED
SUCCESS = TaskStatus.SUCCESS
FAILED = TaskStatus.FAILED
EXPIRED = TaskStatus.EXPIRED
