"""The client's handle on a task's future result."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast, overload

import attrs

from worq._deadline import Deadline
from worq._urls import mask_url
from worq.const import TaskStatus
from worq.exceptions import NoValueYet, ResultNotReady, TaskExpired, TaskFailure
from worq.models import SentTask

if TYPE_CHECKING:
    from worq.core import Broker
    from worq.typing import TaskLike

__all__ = ["Deferred", "ResultHandle", "WaitResult", "sent_task", "wait_all"]

T = TypeVar("T")
D = TypeVar("D", bound="Deferred[Any]")

_NO_VALUE: Any = object()


class _Structuring(Protocol):
    """What a handle's broker converts results with (a Broker, an AsyncBroker)."""

    def structure(self, value: Any, hint: Any, *, task_name: str, task_id: str) -> Any: ...


class ResultHandle(Generic[T]):
    """What every handle on a task's future result has: a :class:`Deferred`'s and
    an async one's (``worq.aio.AsyncDeferred``).

    Either may be passed as a task's argument: the client sends a reference
    to its task (or, when the handle holds its outcome already, the outcome).
    """

    __slots__ = ("_hint", "_value", "_waited", "task")

    task: SentTask
    broker: _Structuring
    _hint: Any
    _value: T | TaskFailure
    _waited: float | None

    def _start(self, task: SentTask, hint: Any) -> None:
        self.task = task
        self._hint = hint
        self._value = _NO_VALUE
        self._waited = None
        """Seconds spent waiting so far; None before the first wait."""

    @property
    def id(self) -> str:
        """The task's id."""
        return self.task.id

    @property
    def name(self) -> str:
        """The task's dotted name."""
        return self.task.name

    def has_value(self) -> bool:
        """True when the outcome is held locally; never touches the backend."""
        return self._value is not _NO_VALUE

    def __bool__(self) -> bool:
        """A handle is true once it holds its outcome (see :meth:`has_value`)."""
        return self.has_value()

    def outcome(self) -> T | TaskFailure:
        """The value, or the TaskFailure, without raising; call only when :meth:`has_value`."""
        return self._value

    def _receive(self, value: Any) -> None:
        """Hold the outcome fetched for this task, converted to its return annotation."""
        if self._hint is not None and not isinstance(value, TaskFailure):
            value = self.broker.structure(value, self._hint, task_name=self.name, task_id=self.id)
        self._value = value

    def as_arg(self) -> T:
        """This handle, typed as the value it stands for.

        ``q.submit(total, [p.as_arg() for p in prices])`` type-checks the
        dependency graph end to end; at run time the worker receives the value.
        """
        return cast(T, self)


class Deferred(ResultHandle[T]):
    """The future result of a task; ``T`` is what the task returns.

    Pass a Deferred as an argument (at any depth inside lists, tuples and
    dicts) to another task and that task runs once this one has finished,
    receiving the value instead of the Deferred. Not thread-safe: share the
    task id, not the object.

    Build one as the manual does, ``Deferred(broker, task)`` from anything
    with the task's ``id`` and ``name``, or from the two strings,
    ``Deferred(broker, task_id, task_name)``, to wait on a task sent elsewhere.

    Args:
        broker: The broker the task was sent through.
        task: The task (an object with ``id`` and ``name``), or its id.
        task_name: The task's dotted name, when ``task`` is an id.
        hint: The task's return annotation, used to rebuild typed results
            (e.g. attrs classes) from JSON; ``None`` leaves values as decoded.

    Attributes:
        task: The :class:`~worq.models.SentTask`: on the client that sent the
            task, its id, name, options and arguments as the caller passed
            them (a Deferred argument is still that Deferred); for a Deferred
            built here from an id or another object, only the id and name
            (``args``, ``kwargs`` and ``options`` are None: they live in the
            backend).
    """

    __slots__ = ("broker",)

    broker: Broker

    @overload
    def __init__(self: Deferred[Any], broker: Broker, task: TaskLike) -> None: ...

    @overload
    def __init__(self: Deferred[Any], broker: Broker, task: str, task_name: str) -> None: ...

    @overload
    def __init__(self, broker: Broker, task: TaskLike, *, hint: Any) -> None: ...

    def __init__(
        self, broker: Broker, task: TaskLike | str, task_name: str | None = None, hint: Any = None
    ) -> None:
        self.broker = broker
        self._start(sent_task("Deferred(broker", task, task_name), hint)

    @property
    def value(self) -> T:
        """The task's return value.

        Raises:
            NoValueYet: (an ``AttributeError``) The outcome is not here yet:
                call :meth:`wait` first.
            TaskFailure: The task failed (``TaskExpired`` if its result vanished).
        """
        value = self._value
        if value is _NO_VALUE:
            raise NoValueYet(self._no_value_yet(), self)
        if isinstance(value, TaskFailure):
            raise value
        return value

    @property
    def status(self) -> TaskStatus | None:
        """``success``/``failed``/``expired`` once held locally, else what the backend says.

        None means the backend does not know the task (result fetched elsewhere
        or expired).
        """
        value = self._value
        if value is _NO_VALUE:
            return self.broker.status(self)
        if isinstance(value, TaskExpired):
            return TaskStatus.EXPIRED
        return TaskStatus.FAILED if isinstance(value, TaskFailure) else TaskStatus.SUCCESS

    def _no_value_yet(self) -> str:
        """What is known of a task whose value was asked for too early, and why."""
        status = self.broker.status(self)
        waited = (
            "wait() was not called"
            if self._waited is None
            else f"waited {self._waited:.3g}s in wait()"
        )
        where = f"queue {self.broker.name!r} at {mask_url(self.broker.url)}"
        causes = {
            TaskStatus.ENQUEUED: f"no pool has taken it from {where} yet: is a worker running "
            "on that queue, with the same URL and queue name?",
            TaskStatus.DELAYED: "it was sent with a delay or eta, or waits to be retried",
            TaskStatus.PENDING: "it waits for the tasks it takes as Deferred arguments",
            TaskStatus.PROCESSING: "a worker is running it: wait longer",
            TaskStatus.LAPSED: "its worker stopped heartbeating: wait() settles it",
            TaskStatus.COMPLETED: "its outcome is ready: call wait() to fetch it",
        }
        cause = causes.get(status) if status is not None else None
        if cause is None:
            cause = f"{where} does not know it: its result was taken by another handle, or expired"
        return (
            f"{self.name} [{self.broker.name}:{self.id}] has no value yet "
            f"(status {status or 'unknown'}; {waited}): {cause}; call wait(timeout) first"
        )

    def wait(self, timeout: float | None) -> bool:
        """Block until the task's outcome arrives, for at most ``timeout`` seconds.

        Never wait on another task's result from inside a task: with every
        worker waiting, nothing runs and the queue deadlocks. ``None`` waits
        forever, which hangs if the worker vanishes without a trace.

        Returns:
            True when the outcome (value or failure) is now held locally.
        """
        if self._value is not _NO_VALUE:
            return True
        started = time.monotonic()
        try:
            value = self.broker.pop_result(self, timeout)
        except ResultNotReady:
            return False
        except TaskFailure as failure:
            value = failure
        finally:
            self._waited = (self._waited or 0.0) + time.monotonic() - started
        self._receive(value)
        return True

    def __repr__(self) -> str:
        status = self.status
        return f"<Deferred {self.name} [{self.broker.name}:{self.id}] {status or 'unknown'}>"


def sent_task(made_as: str, task: TaskLike | str, task_name: str | None) -> SentTask:
    """The SentTask a handle stands for, from the task (anything with ``id`` and
    ``name``) or its id and name; ``made_as`` opens the call, for the error."""
    if isinstance(task, str):
        if task_name is None:
            raise ValueError(
                f"{made_as}, {task!r}) needs the task's name too: {made_as}, task_id, task_name)"
            )
        return SentTask(id=task, name=task_name)
    if isinstance(task, SentTask):
        return task
    return SentTask(id=task.id, name=task.name)


@attrs.frozen
class WaitResult(Generic[D]):
    """What :func:`wait_all` found: the Deferreds holding their outcome, and the others.

    Unpacks like ``concurrent.futures.wait``'s result:
    ``done, not_done = wait_all(deferreds, 5)``.

    Attributes:
        done: The Deferreds holding their outcome (a value or a failure:
            ``.value`` and ``.status`` need no backend call), in the order given.
        not_done: Those whose outcome did not come within the timeout, in order.
    """

    done: list[D]
    not_done: list[D]

    @property
    def all_done(self) -> bool:
        """True when no Deferred timed out."""
        return not self.not_done

    def __iter__(self) -> Iterator[list[D]]:
        return iter((self.done, self.not_done))


def wait_all(deferreds: Iterable[D], timeout: float | None) -> WaitResult[D]:
    """Wait for many tasks' outcomes at once, for at most ``timeout`` seconds in all.

    Like ``Deferred.wait`` on each, with few round trips to the backend: on
    Redis the results already there are fetched in one pipelined round trip
    per 1,000 tasks, and the others waited for without a round trip per task.
    ``None`` waits forever, 0 only fetches what is there. Deferreds already
    holding their outcome count as done at once; a failed task is done too
    (its ``.value`` raises the TaskFailure).

    Returns:
        The done and the not-done Deferreds (see :class:`WaitResult`).
    """
    given = list(deferreds)
    by_broker: dict[Broker, list[Deferred[Any]]] = {}
    for deferred in given:
        if not deferred.has_value():
            by_broker.setdefault(deferred.broker, []).append(deferred)
    deadline = Deadline(timeout)
    for broker, waiting in by_broker.items():
        started = time.monotonic()
        outcomes = broker.pop_results(waiting, deadline.remaining())
        waited = time.monotonic() - started
        for handle in waiting:
            handle._waited = (handle._waited or 0.0) + waited
            if handle.id in outcomes and not handle.has_value():
                handle._receive(outcomes[handle.id])
    done = [deferred for deferred in given if deferred.has_value()]
    not_done = [deferred for deferred in given if not deferred.has_value()]
    return WaitResult(done, not_done)
