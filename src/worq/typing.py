"""The contracts between worq's parts, gathered in one place.

:class:`TaskQueue` is what a backend implements, :class:`WorkerPool` what a
pool implements and :class:`Codec` what a serializer implements. They are
``typing.Protocol`` classes: implementations do not inherit from them, they
match them, and mypy checks that they do.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Protocol

from worq._models import TaskMessage
from worq.const import TaskStatus

__all__ = ["Codec", "DeferResult", "TaskQueue", "WorkerPool"]


class DeferResult(enum.StrEnum):
    """What :meth:`TaskQueue.defer_task` did."""

    STORED = "stored"
    """Stored: enqueued at once if every argument was ready, else held as pending."""
    DUPLICATE = "duplicate"
    """Nothing stored: a task with this id exists."""
    MISSING_ARGUMENT = "missing_argument"
    """Nothing stored: an argument's task has no result to take (fetched, expired, unknown)."""


class TaskQueue(Protocol):
    """A queue backend: stores task messages and results as opaque bytes.

    Backends never see Python objects, only ids and bytes; the broker encodes
    and decodes. Every method is atomic and thread-safe: a crash at any moment
    leaves each task either fully before or fully after a step.

    Task/result lifecycle:

    1. ``enqueue_task``/``defer_task`` store a result placeholder (unless the
       task ignores its result) and queue the task, or hold it until every
       task it takes as an argument has finished.
    2. ``get`` takes a task and gives its placeholder a timeout.
    3. ``set_task_timeout`` (heartbeats) extends that timeout, and that of every
       pending task waiting on this task's result.
    4. ``set_result`` stores the result, hands it to every pending task that
       takes it as an argument, and queues those whose arguments are complete.

    Where WorQ 1.1 split step 4 into ``set_result``, ``set_argument`` and
    ``undefer_task`` (and enqueueing into ``reserve_argument`` and
    ``defer_task``), worq does each step in one atomic call, so that no crash
    can strand a task between them and each costs one round trip.
    """

    @property
    def url(self) -> str:
        """The URL the backend was made from, password included: mask it to show it."""
        ...

    @property
    def name(self) -> str:
        """The queue name; named queues on one backend never share tasks."""
        ...

    initial_result_timeout: float
    """Seconds a taken task's result placeholder lives before a heartbeat must extend it."""

    def enqueue_task(self, task_id: str, message: bytes, *, keep_result: bool) -> bool:
        """Queue a task; store a result placeholder when ``keep_result``.

        Returns:
            False, storing nothing, when a task with this id exists.
        """
        ...

    def defer_task(
        self, task_id: str, message: bytes, argument_ids: Sequence[str], *, keep_result: bool
    ) -> DeferResult:
        """Queue a task once the results of ``argument_ids`` are all available.

        Results already available are taken as arguments at once; the others
        are reserved and handed over by ``set_result``.
        """
        ...

    def get(self, timeout: float | None) -> tuple[str, bytes] | None:
        """Take the next task: ``(task_id, message)``, or None after ``timeout`` seconds.

        ``None`` waits forever. The task's status becomes ``processing``.
        """
        ...

    def size(self) -> int:
        """Number of tasks waiting in the queue."""
        ...

    def discard_pending(self) -> int:
        """Drop every queued task; their waiters see them expire. Returns how many."""
        ...

    def get_arguments(self, task_id: str) -> dict[str, bytes]:
        """The results handed to a task as arguments, keyed by argument task id."""
        ...

    def set_task_timeout(self, task_id: str, timeout: float) -> None:
        """Keep a running task's result placeholder (and its dependants') for ``timeout`` s."""
        ...

    def get_status(self, task_id: str) -> TaskStatus | None:
        """``pending``, ``enqueued``, ``processing`` or ``completed``; None when unknown."""
        ...

    def set_result(self, task_id: str, message: bytes, timeout: float) -> None:
        """Store a task's result for ``timeout`` seconds and hand it to its dependants."""
        ...

    def pop_result(self, task_id: str, timeout: float | None) -> bytes | TaskStatus | None:
        """Take a task's result, waiting up to ``timeout`` seconds (None: forever; 0: no wait).

        Returns:
            The result message; ``TaskStatus.EXPIRED`` when the task is unknown
            or its placeholder lapsed; None when ``timeout`` passed first.
        """
        ...

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...


class WorkerPool(Protocol):
    """Runs tasks taken from a broker until stopped."""

    def start(self, timeout: float = ...) -> None:
        """Start the workers; ``timeout`` bounds each wait for a task."""
        ...

    def stop(self, *, join: bool = ...) -> None:
        """Ask the workers to finish their current task and stop; optionally wait."""
        ...

    def join(self) -> None:
        """Wait until every worker has stopped."""
        ...


class Codec(Protocol):
    """Turns messages and values into bytes and back.

    Encoding refuses what it cannot represent faithfully with
    :class:`~worq.exceptions.SerializationError` naming the offending type;
    decoding raises the same error for bytes it cannot read.
    """

    @property
    def name(self) -> str:
        """``"json"`` or ``"pickle"``."""
        ...

    def encode_message(self, message: TaskMessage) -> bytes:
        """Encode a task message."""
        ...

    def decode_message(self, data: bytes) -> TaskMessage:
        """Decode a task message."""
        ...

    def encode_value(self, value: object) -> bytes:
        """Encode a task result or argument value (a TaskFailure is a value too)."""
        ...

    def decode_value(self, data: bytes) -> Any:
        """Decode what :meth:`encode_value` produced."""
        ...

    def structure(self, value: Any, hint: Any) -> Any:
        """Convert a decoded value to the type ``hint`` (a task's annotation)."""
        ...
