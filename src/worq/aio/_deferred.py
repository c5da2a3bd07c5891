"""The async client's handle on a task's future result."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar, overload

from worq.const import TaskStatus
from worq.deferred import ResultHandle, sent_task
from worq.exceptions import NoValueYet, ResultNotReady, TaskExpired, TaskFailure

if TYPE_CHECKING:
    from worq.aio._broker import AsyncBroker
    from worq.aio._queue import AsyncQueue
    from worq.typing import TaskLike

__all__ = ["AsyncDeferred"]

T = TypeVar("T")


class AsyncDeferred(ResultHandle[T]):
    """The future result of a task, for async code; ``T`` is what the task returns.

    ``await d`` waits for the outcome and returns the value or raises the
    task's TaskFailure (TaskExpired when its result vanished); it works with
    ``asyncio.gather``, ``asyncio.wait_for`` and ``asyncio.as_completed``.
    Cancelling the waiting coroutine never cancels the task: it runs on, and
    a later wait gets its outcome. Pass ``d.as_arg()`` to another task to
    build a dependency graph, as with a :class:`~worq.Deferred`.

    Build one for a task sent elsewhere (by a sync client, say) from its id
    and name: ``AsyncDeferred(aq, task_id, task_name)``.

    Args:
        queue: An async queue (or its broker) on the task's queue.
        task: The task (an object with ``id`` and ``name``), or its id.
        task_name: The task's dotted name, when ``task`` is an id.
        hint: The task's return annotation, to rebuild typed results from JSON.
    """

    __slots__ = ("broker",)

    broker: AsyncBroker

    @overload
    def __init__(
        self: AsyncDeferred[Any], queue: AsyncQueue[Any] | AsyncBroker, task: TaskLike
    ) -> None: ...

    @overload
    def __init__(
        self: AsyncDeferred[Any],
        queue: AsyncQueue[Any] | AsyncBroker,
        task: str,
        task_name: str,
    ) -> None: ...

    @overload
    def __init__(
        self, queue: AsyncQueue[Any] | AsyncBroker, task: TaskLike, *, hint: Any
    ) -> None: ...

    def __init__(
        self,
        queue: AsyncQueue[Any] | AsyncBroker,
        task: TaskLike | str,
        task_name: str | None = None,
        *,
        hint: Any = None,
    ) -> None:
        from worq.aio._queue import AsyncQueue  # the queue module imports this one

        self.broker = queue.broker if isinstance(queue, AsyncQueue) else queue
        self._start(sent_task("AsyncDeferred(queue", task, task_name), hint)

    async def wait(self, timeout: float | None) -> bool:
        """Wait for the task's outcome, for at most ``timeout`` seconds (None: forever).

        Returns:
            True when the outcome (value or failure) is now held locally.
        """
        if self.has_value():
            return True
        started = time.monotonic()
        try:
            value = await self.broker.pop_result(self, timeout)
        except ResultNotReady:
            return False
        except TaskFailure as failure:
            value = failure
        finally:
            self._waited = (self._waited or 0.0) + time.monotonic() - started
        self._receive(value)
        return True

    def __await__(self) -> Generator[Any, None, T]:
        """``await d``: wait as long as it takes, then :attr:`value`."""
        yield from self.wait(None).__await__()
        return self.value

    @property
    def value(self) -> T:
        """The task's return value, once waited for.

        Raises:
            NoValueYet: The outcome is not here yet: ``await d`` (or ``d.wait``) first.
            TaskFailure: The task failed (``TaskExpired`` if its result vanished).
        """
        value = self._value
        if not self.has_value():
            raise NoValueYet(
                f"{self.name} [{self.broker.name}:{self.id}] has no value yet: "
                "await it (or its wait(timeout)) first",
                self,
            )
        if isinstance(value, TaskFailure):
            raise value
        return value

    async def status(self) -> TaskStatus | None:
        """``success``/``failed``/``expired`` once held, else what the backend says."""
        if not self.has_value():
            return await self.broker.status(self)
        if isinstance(self._value, TaskExpired):
            return TaskStatus.EXPIRED
        return TaskStatus.FAILED if isinstance(self._value, TaskFailure) else TaskStatus.SUCCESS

    def __repr__(self) -> str:
        held = "done" if self.has_value() else "waiting"
        return f"<AsyncDeferred {self.name} [{self.broker.name}:{self.id}] {held}>"
