"""The Broker: the one object that talks to a queue backend.

It owns the serializer and the registry of exposed tasks. Clients enqueue
through it (via :class:`~worq.task.Queue`), workers take, run and finish tasks
through it, and :class:`~worq.task.Deferred` fetches results through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from worq._arguments import extract_refs, resolve_refs
from worq._codec import make_codec
from worq._deferred import Deferred
from worq._events import logger, task_fields
from worq._exposed import ArgumentMismatch, ExposedTask
from worq._models import TaskMessage, TaskOptions
from worq._urls import mask_url
from worq.const import TaskStatus
from worq.exceptions import (
    DependencyUnavailable,
    DuplicateTask,
    ResultNotReady,
    SerializationError,
    TaskExpired,
    TaskFailure,
)
from worq.task import Queue, TaskSpace
from worq.typing import DeferResult, TaskQueue

__all__ = ["NOOP_TASK", "Broker", "TaskQueue"]

NOOP_TASK = "worq:noop"
"""A task every broker runs; its name cannot clash with a dotted task path."""

HEARTBEAT_GRACE = 3
"""A running task's result placeholder outlives this many missed heartbeats."""

UNDECODABLE_RESULT_TIMEOUT = 3600
"""Seconds to keep the failure recorded for a message nobody could decode."""


def _noop() -> None:
    """Does nothing: wakes a worker (see ``WorkerPool.stop(use_sentinel=True)``)."""


class Broker:
    """Connects client code and workers to one named queue on one backend.

    Args:
        taskqueue: The backend (see :class:`worq.typing.TaskQueue`).
        serializer: ``"json"`` (default) or ``"pickle"``. Pickle runs code
            chosen by whoever can write to the backend: use it only when every
            such writer is trusted.
    """

    def __init__(self, taskqueue: TaskQueue, *, serializer: str = "json") -> None:
        self.taskqueue = taskqueue
        self.codec = make_codec(serializer)
        self.tasks: dict[str, ExposedTask] = {
            NOOP_TASK: ExposedTask.from_callable(NOOP_TASK, _noop)
        }

    @property
    def name(self) -> str:
        """The queue name."""
        return self.taskqueue.name

    @property
    def url(self) -> str:
        """The backend URL, password included: mask it before showing it."""
        return self.taskqueue.url

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Broker):
            return NotImplemented
        return (type(self.taskqueue), self.url, self.name) == (
            type(other.taskqueue),
            other.url,
            other.name,
        )

    def __hash__(self) -> int:
        return hash((type(self.taskqueue), self.url, self.name))

    def __repr__(self) -> str:
        return f"<Broker {mask_url(self.url)} [{self.name}] {self.codec.name}>"

    # -- worker setup -------------------------------------------------------

    def expose(self, obj: TaskSpace | Callable[..., Any], replace: bool = False) -> None:
        """Make a TaskSpace's tasks, or one callable, runnable by this broker's workers.

        A callable is exposed under its ``__name__`` in the root namespace.

        Raises:
            ValueError: A task of that name is already exposed and not ``replace``.
        """
        if isinstance(obj, TaskSpace):
            items: Iterable[tuple[str, Callable[..., Any]]] = obj.tasks.items()
        else:
            name = getattr(obj, "__name__", None)
            if not isinstance(name, str):
                raise ValueError(f"cannot expose {obj!r}: it has no __name__ (use a TaskSpace)")
            items = [(name, obj)]
        for name, fn in items:
            if not replace and name in self.tasks:
                raise ValueError(
                    f"task {name!r} is already exposed on queue {self.name!r}: "
                    "pass replace=True to replace it"
                )
            self.tasks[name] = ExposedTask.from_callable(name, fn)

    # -- client side ----------------------------------------------------------

    def queue(self, target: str = "", **options: Any) -> Queue:
        """A Queue on this broker for the task (space) path ``target``."""
        return Queue(self, target, **options)

    def enqueue(
        self,
        name: str,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        hint: Any = None,
    ) -> Deferred[Any] | None:
        """Send one task; return its Deferred, or None when it ignores its result.

        Raises:
            SerializationError: An argument cannot be encoded; nothing was stored.
            DuplicateTask: A task with ``task_id`` exists; nothing was stored.
            DependencyUnavailable: A Deferred argument has no result left to take.
        """
        extracted = extract_refs(args, kwargs)
        message = TaskMessage(
            id=task_id,
            name=name,
            queue=self.name,
            args=extracted.args,
            kwargs=extracted.kwargs,
            options=options,
            refs=extracted.refs,
            resolved=extracted.resolved,
        )
        try:
            data = self.codec.encode_message(message)
        except SerializationError as exc:
            raise SerializationError(
                f"cannot send task {name!r} to queue {self.name!r}: {exc}"
            ) from None
        keep_result = not options.ignore_result
        if extracted.refs:
            outcome = self.taskqueue.defer_task(
                task_id, data, extracted.refs, keep_result=keep_result
            )
            if outcome is DeferResult.MISSING_ARGUMENT:
                raise self._missing_dependency(name, task_id, extracted.refs)
            stored = outcome is DeferResult.STORED
        else:
            stored = self.taskqueue.enqueue_task(task_id, data, keep_result=keep_result)
        if not stored:
            raise DuplicateTask(
                name, self.name, task_id, "duplicate task id: a task with this id already exists"
            )
        logger.debug(
            "task.deferred" if extracted.refs else "task.enqueued",
            **task_fields(message),
            refs=list(extracted.refs),
        )
        return Deferred(self, task_id, name, hint) if keep_result else None

    def _missing_dependency(
        self, name: str, task_id: str, refs: tuple[str, ...]
    ) -> DependencyUnavailable:
        missing = [ref for ref in refs if self.taskqueue.get_status(ref) is None]
        return DependencyUnavailable(
            f"cannot send task {name!r} ({task_id}) to queue {self.name!r}: the result of "
            f"task(s) {missing or list(refs)} is gone (fetched, expired or never kept); "
            "pass the value instead, or a Deferred whose result is still stored"
        )

    def pop_result(self, task: Deferred[Any], timeout: float | None = 0) -> Any:
        """Take a task's outcome: its value, or the TaskFailure it ended with.

        Args:
            task: Anything with the task's ``id`` and ``name``.
            timeout: Seconds to wait; 0 (default) does not wait; None waits forever.

        Raises:
            ResultNotReady: (a ``KeyError``) No result within ``timeout``.
            TaskExpired: The result vanished: its worker was lost or it timed out.
        """
        data = self.taskqueue.pop_result(task.id, timeout)
        if data is None:
            raise ResultNotReady(f"{task.name} [{self.name}:{task.id}] has no result yet")
        if isinstance(data, TaskStatus):
            raise TaskExpired(
                task.name,
                self.name,
                task.id,
                "no result: the task is unknown, its worker was lost, its result "
                "timed out, or another client already took it",
            )
        try:
            return self.codec.decode_value(data)
        except SerializationError as exc:
            logger.error(
                "result.undecodable",
                task_id=task.id,
                task_name=task.name,
                queue=self.name,
                error=str(exc),
            )
            return TaskFailure(task.name, self.name, task.id, f"result could not be decoded: {exc}")

    def status(self, result: Deferred[Any]) -> TaskStatus | None:
        """What the backend knows of the task behind ``result``."""
        return self.taskqueue.get_status(result.id)

    def structure(self, value: Any, hint: Any, *, task_name: str, task_id: str) -> Any:
        """Convert a decoded result to the task's return annotation.

        Returns:
            The converted value, or a TaskFailure saying why it did not fit.
        """
        try:
            return self.codec.structure(value, hint)
        except Exception as exc:
            return TaskFailure(
                task_name, self.name, task_id, f"result does not fit its annotation {hint!r}: {exc}"
            )

    def discard_pending_tasks(self) -> int:
        """Drop every task waiting in the queue; returns how many were dropped."""
        count = self.taskqueue.discard_pending()
        logger.info("queue.purged", queue=self.name, count=count)
        return count

    def serialize(self, obj: object) -> bytes:
        """Encode a value with this broker's serializer."""
        return self.codec.encode_value(obj)

    def deserialize(self, message: bytes) -> Any:
        """Decode a value encoded by :meth:`serialize`."""
        return self.codec.decode_value(message)

    # -- worker side --------------------------------------------------------

    def next_task(self, timeout: float | None = None) -> TaskMessage | None:
        """Take the next task, waiting up to ``timeout`` seconds (None: forever).

        A message that cannot be decoded does not stop the worker: its task
        is failed with the reason, an event is logged and None is returned.
        """
        taken = self.take(timeout)
        return None if taken is None else taken[0]

    def take(self, timeout: float | None = None) -> tuple[TaskMessage, bytes] | None:
        """Like :meth:`next_task`, also returning the message as it was stored.

        The process pool forwards those bytes to the worker process that runs
        the task, which decodes them with its own broker.
        """
        item = self.taskqueue.get(timeout)
        if item is None:
            return None
        task_id, data = item
        try:
            message = self.codec.decode_message(data)
        except SerializationError as exc:
            self._reject(task_id, f"message could not be decoded ({self.codec.name}): {exc}")
            return None
        if message.id != task_id or message.queue != self.name:
            self._reject(task_id, f"message is for task {message.id!r} on queue {message.queue!r}")
            return None
        return message, data

    def _reject(self, task_id: str, reason: str) -> None:
        logger.error("task.rejected", task_id=task_id, queue=self.name, error=reason)
        failure = TaskFailure("?", self.name, task_id, reason)
        self.taskqueue.set_result(
            task_id, self.codec.encode_value(failure), UNDECODABLE_RESULT_TIMEOUT
        )

    def invoke(self, task: TaskMessage) -> None:
        """Run a task taken with :meth:`next_task` and store its outcome."""
        outcome = self.execute(task)
        if not task.options.ignore_result:
            self.set_result(task, outcome)

    def execute(self, task: TaskMessage, arguments: Mapping[str, bytes] | None = None) -> Any:
        """Run a task taken with :meth:`next_task`; return its outcome without storing it.

        Args:
            task: The task.
            arguments: The encoded results handed to the task as arguments, when
                the caller already fetched them (see :meth:`get_arguments`);
                by default they are fetched from the backend when needed.

        Returns:
            The task's return value, or a TaskFailure saying why there is none.
        """
        fields = task_fields(task)
        logger.info("task.started", **fields)
        started = time.perf_counter()
        outcome = self._run(task, fields, arguments)
        duration = round(time.perf_counter() - started, 6)
        if isinstance(outcome, TaskFailure):
            logger.warning("task.failed", **fields, error=outcome.error, duration_s=duration)
        else:
            logger.info("task.succeeded", **fields, duration_s=duration)
        return outcome

    def get_arguments(self, task: TaskMessage) -> dict[str, bytes]:
        """The encoded results handed to ``task`` as arguments (none unless it has refs)."""
        return self.taskqueue.get_arguments(task.id) if task.refs else {}

    def _run(
        self, task: TaskMessage, fields: dict[str, Any], arguments: Mapping[str, bytes] | None
    ) -> Any:
        exposed = self.tasks.get(task.name)
        if exposed is None:
            return TaskFailure(task.name, task.queue, task.id, "no such task")
        values = dict(task.resolved)
        if task.refs:
            handed = self.get_arguments(task) if arguments is None else arguments
            for ref in task.refs:
                values[ref] = self._argument_value(task, ref, handed.get(ref))
        if task.options.on_error == "fail":
            for value in values.values():
                if isinstance(value, TaskFailure):
                    return TaskFailure(
                        task.name, task.queue, task.id, f"dependency failed: {value}"
                    )
        args, kwargs = (
            resolve_refs(task.args, task.kwargs, values) if values else (task.args, task.kwargs)
        )
        try:
            return exposed.call(self.codec, args, kwargs)
        except ArgumentMismatch as exc:
            return TaskFailure(task.name, task.queue, task.id, str(exc))
        except Exception as exc:
            logger.error("task.raised", **fields, exc_info=True)
            return TaskFailure(task.name, task.queue, task.id, f"{type(exc).__name__}: {exc}")

    def _argument_value(self, task: TaskMessage, ref: str, data: bytes | None) -> Any:
        if data is None:
            return TaskFailure("?", task.queue, ref, "result was not handed over to the dependant")
        try:
            return self.codec.decode_value(data)
        except SerializationError as exc:
            return TaskFailure("?", task.queue, ref, f"result could not be decoded: {exc}")

    def set_result(self, task: TaskMessage, result: Any) -> None:
        """Store a task's outcome (a value or a TaskFailure) for its waiter and dependants.

        A value the serializer refuses is replaced by a TaskFailure saying so.
        """
        self.store_result(task, self.encode_outcome(task, result))

    def encode_outcome(self, task: TaskMessage, outcome: Any) -> bytes:
        """Encode a task's outcome; one the serializer refuses becomes a TaskFailure."""
        try:
            return self.codec.encode_value(outcome)
        except SerializationError as exc:
            logger.error("result.unencodable", **task_fields(task), error=str(exc))
            failure = TaskFailure(
                task.name, task.queue, task.id, f"result could not be encoded: {exc}"
            )
            return self.codec.encode_value(failure)

    def store_result(self, task: TaskMessage, data: bytes) -> None:
        """Store an outcome already encoded (by :meth:`encode_outcome`, maybe in a worker)."""
        self.taskqueue.set_result(task.id, data, task.options.result_timeout)

    def heartbeat(self, task: TaskMessage) -> None:
        """Keep a running task's result placeholder (and its dependants') alive."""
        self.taskqueue.set_task_timeout(task.id, task.options.heartrate * HEARTBEAT_GRACE)

    def task_failed(
        self, task: TaskMessage, reason: str = "the worker running it was lost"
    ) -> None:
        """Fail a task whose worker died: its waiter and dependants get TaskExpired."""
        logger.error("task.expired", **task_fields(task), error=reason)
        if not task.options.ignore_result:
            self.set_result(task, TaskExpired(task.name, task.queue, task.id, reason))

    def close(self) -> None:
        """Release the backend's connections."""
        self.taskqueue.close()
