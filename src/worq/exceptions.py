"""Every error worq raises on purpose derives from :class:`WorqError`.

The public API never leaks a bare ``KeyError`` or a redis-py exception: a
backend failure surfaces as :class:`BackendUnavailable`, a value the serializer
cannot handle as :class:`SerializationError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackendUnavailable",
    "DependencyUnavailable",
    "DuplicateTask",
    "NoValueYet",
    "PoolError",
    "ResultNotReady",
    "SerializationError",
    "TaskExpired",
    "TaskFailure",
    "WorqError",
]


class WorqError(Exception):
    """Root of every error worq raises on purpose."""


class TaskFailure(WorqError):
    """A task did not produce a value.

    Built from four positional arguments, as in WorQ 1.1: task name, queue
    name, task id and error text. Two failures are equal when their class and
    those four values are equal, so a failure that crossed the wire compares
    equal to one built locally.
    """

    def __init__(self, task_name: str, queue: str, task_id: str, error: str) -> None:
        super().__init__(task_name, queue, task_id, error)

    @property
    def task_name(self) -> str:
        """Name of the task that failed."""
        return str(self.args[0])

    @property
    def queue(self) -> str:
        """Name of the queue the task was sent to."""
        return str(self.args[1])

    @property
    def task_id(self) -> str:
        """Id of the task that failed."""
        return str(self.args[2])

    @property
    def error(self) -> str:
        """What went wrong, e.g. ``"ValueError: bad sku"``."""
        return str(self.args[3])

    def __str__(self) -> str:
        return f"{self.task_name} [{self.queue}:{self.task_id}] {self.error}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self.args!r}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskFailure) or type(other) is not type(self):
            return NotImplemented
        return self.args == other.args

    def __hash__(self) -> int:
        return hash((type(self), self.args))


class TaskExpired(TaskFailure):
    """The task's result vanished before it could be delivered.

    Usually the worker running it was lost (killed, powered off) and stopped
    sending heartbeats, or nobody fetched the result within its timeout.
    """


class DuplicateTask(TaskFailure):
    """A task with the same id is already in the queue or holds a result.

    Attributes:
        deferreds: For a batch (``Queue.map``, ``Queue.starmap``), the
            Deferreds of its items in order, None for each item not stored
            (and for every item when results are ignored); None for one task.
    """

    deferreds: list[Any] | None = None


class SerializationError(WorqError):
    """A value could not be encoded or decoded by the broker's serializer."""


class BackendUnavailable(WorqError):
    """The queue backend (e.g. a Redis server) could not be reached."""


class ResultNotReady(WorqError, KeyError):
    """A task's result is not available yet (a ``KeyError``, as in WorQ 1.1)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "result not ready"


class NoValueYet(WorqError, AttributeError):
    """``Deferred.value`` was read before the outcome arrived.

    An ``AttributeError``, as WorQ 1.1 raised; its message says what the
    backend knows of the task, how long was waited and the likely cause.
    """

    def __init__(self, message: str, obj: object) -> None:
        # obj given, name left None: Python then neither fills them in nor
        # appends a "Did you mean: '_value'?" guess to the message.
        super().__init__(message, obj=obj)


class DependencyUnavailable(WorqError):
    """A Deferred passed as an argument has no result left to take.

    Its result was already fetched by another client, expired, or never kept
    (``ignore_result=True``).

    Attributes:
        deferreds: For a batch, the Deferreds of its items, as for
            :class:`DuplicateTask`; None for one task.
    """

    deferreds: list[Any] | None = None


class PoolError(WorqError):
    """A worker pool was used out of order (started twice, say) or could not start."""
