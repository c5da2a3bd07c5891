"""The async client's broker: sends tasks and takes results through an async backend.

Encoding a task, reading an outcome and converting it to the task's return
annotation are the sync :class:`~worq.core.Broker`'s, which an AsyncBroker
holds as its twin, on its backend's sync twin: nothing of that is written
twice. The twin also makes, in a thread, the rare calls no async path needs
to be fast for: settling a task whose lease lapsed, and finding which
Deferred argument's result is gone when a backend refuses a task for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from worq._deadline import Deadline
from worq._urls import mask_url
from worq.aio._deferred import AsyncDeferred
from worq.const import TaskStatus
from worq.core import MAX_MESSAGE_SIZE, Broker
from worq.exceptions import DuplicateTask, ResultNotReady
from worq.models import TaskOptions
from worq.typing import AsyncTaskQueue, DeferResult, NewTask, TaskLike

__all__ = ["AsyncBroker"]


class AsyncBroker:
    """Connects async client code to one named queue on one backend.

    Args:
        taskqueue: The async backend (see :class:`worq.typing.AsyncTaskQueue`).
        serializer: ``"json"`` (default) or ``"pickle"``; must match the workers'.
        max_message_size: Largest encoded task message accepted, in bytes.
    """

    def __init__(
        self,
        taskqueue: AsyncTaskQueue,
        *,
        serializer: str = "json",
        max_message_size: int = MAX_MESSAGE_SIZE,
    ) -> None:
        self.taskqueue = taskqueue
        self.sync = Broker(taskqueue.sync, serializer=serializer, max_message_size=max_message_size)
        """The sync twin (see the module docstring)."""

    @property
    def name(self) -> str:
        """The queue name."""
        return self.taskqueue.name

    @property
    def url(self) -> str:
        """The backend URL, password included: mask it before showing it."""
        return self.taskqueue.url

    def __repr__(self) -> str:
        return f"<AsyncBroker {mask_url(self.url)} [{self.name}] {self.sync.codec.name}>"

    async def enqueue_many(
        self,
        name: str,
        calls: Sequence[tuple[str, tuple[Any, ...], dict[str, Any]]],
        options: TaskOptions,
        hint: Any = None,
    ) -> list[AsyncDeferred[Any] | None]:
        """Send tasks of one name, as ``Broker.enqueue_many`` does (one for a single task).

        Raises:
            SerializationError, ValueError: As for ``Broker.enqueue_many``
                (naming the item for a batch); nothing was sent.
            DuplicateTask, DependencyUnavailable: As for ``Broker.enqueue``
                (one task) or ``Broker.enqueue_many`` (a batch).
        """
        sync = self.sync
        batch = len(calls) != 1
        prepared = [
            sync._encode(name, task_id, args, kwargs, options, 0, False,
                         f" (item {index} of the batch)" if batch else "")
            for index, (task_id, args, kwargs) in enumerate(calls)
        ]  # fmt: skip
        keep_result = not options.ignore_result
        outcomes = await self.taskqueue.enqueue_tasks(
            [
                NewTask(message.id, data, keep_result, message.tracked, 0, extracted.refs)
                for message, extracted, data in prepared
            ]
        )
        sent: list[AsyncDeferred[Any] | None] = []
        refused: list[tuple[int, DeferResult]] = []
        for index, ((message, extracted, _), (_, args, kwargs), outcome) in enumerate(
            zip(prepared, calls, outcomes, strict=True)
        ):
            if outcome is not DeferResult.STORED:
                sent.append(None)
                refused.append((index, outcome))
                continue
            sync._log_sent(message, extracted, 0)
            if options.ignore_result:
                sent.append(None)
            else:
                sent.append(AsyncDeferred(self, sync._sent_task(message, args, kwargs), hint=hint))
        if not refused:
            return sent
        if batch:
            raise await asyncio.to_thread(sync._batch_refused, name, prepared, refused, sent)
        message, extracted, _ = prepared[0]
        if refused[0][1] is DeferResult.DUPLICATE:
            raise DuplicateTask(
                name, self.name, message.id, "cannot enqueue task with duplicate id"
            )
        raise await asyncio.to_thread(sync._missing_dependency, name, message.id, extracted.refs)

    async def pop_result(self, task: TaskLike, timeout: float | None = 0) -> Any:
        """Take a task's outcome, as ``Broker.pop_result`` does, waiting without polling.

        Raises:
            ResultNotReady: No result within ``timeout``.
            TaskExpired: The result vanished.
        """
        deadline = Deadline(timeout)
        while True:
            data = await self.taskqueue.pop_result(task.id, deadline.remaining())
            if data is not TaskStatus.LAPSED:
                break
            await asyncio.to_thread(self.sync.settle_lapsed, task.id)
        if data is None:
            raise ResultNotReady(f"{task.name} [{self.name}:{task.id}] has no result yet")
        outcome = self.sync._outcome(task, data)
        if isinstance(data, TaskStatus):
            raise outcome
        return outcome

    async def status(self, task: TaskLike) -> TaskStatus | None:
        """What the backend knows of the task."""
        return await self.taskqueue.get_status(task.id)

    def structure(self, value: Any, hint: Any, *, task_name: str, task_id: str) -> Any:
        """Convert a decoded result to the task's return annotation (see ``Broker.structure``)."""
        return self.sync.structure(value, hint, task_name=task_name, task_id=task_id)

    async def close(self) -> None:
        """Release the backend's connections."""
        await self.taskqueue.close()
