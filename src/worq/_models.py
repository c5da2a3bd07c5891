"""Value objects that travel between clients, brokers and workers."""

from __future__ import annotations

from typing import Any, Literal

import attrs

__all__ = ["ON_ERROR_VALUES", "ArgumentRef", "OnError", "TaskMessage", "TaskOptions"]

OnError = Literal["fail", "pass"]
ON_ERROR_VALUES: tuple[OnError, ...] = ("fail", "pass")


def _positive_number(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


def _on_error(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ON_ERROR_VALUES:
        raise ValueError(
            f"on_error must be Task.FAIL ('fail') or Task.PASS ('pass'), got {value!r}"
        )


def _boolean(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name} must be True or False, got {value!r}")


@attrs.frozen(kw_only=True)
class TaskOptions:
    """How a task is run and how long its result lives.

    Attributes:
        on_error: ``"fail"`` fails the task when a task it takes as an argument
            failed; ``"pass"`` passes the :class:`~worq.TaskFailure` in as the
            argument's value.
        ignore_result: Fire and forget: no result is stored, nothing to wait on.
        result_timeout: Seconds a finished task's result is kept for its waiter.
        heartrate: Seconds between the heartbeats a worker sends while the task
            runs; the result placeholder lapses after a few missed beats.
    """

    on_error: OnError = attrs.field(default="fail", validator=_on_error)
    ignore_result: bool = attrs.field(default=False, validator=_boolean)
    result_timeout: float = attrs.field(default=3600, validator=_positive_number)
    heartrate: float = attrs.field(default=30, validator=_positive_number)


@attrs.frozen
class ArgumentRef:
    """Stands in a message for the result of another task.

    A :class:`~worq.task.Deferred` passed as an argument is replaced by one of
    these at enqueue time; the worker swaps it for the result before the call.
    """

    task_id: str


@attrs.frozen(kw_only=True)
class TaskMessage:
    """One task invocation, as the client sends it and the worker runs it.

    Attributes:
        id: Unique task id; also the key of its result.
        name: Dotted task name, e.g. ``"shop.price"``.
        queue: Name of the queue the task was sent to.
        args: Positional arguments; may contain :class:`ArgumentRef`.
        kwargs: Keyword arguments; may contain :class:`ArgumentRef`.
        options: How to run the task.
        refs: Ids of the referenced tasks whose results the backend hands over.
        resolved: Outcomes of referenced tasks that the client already held
            (completed Deferreds passed as arguments), keyed by task id.
    """

    id: str
    name: str
    queue: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    options: TaskOptions = attrs.field(factory=TaskOptions)
    refs: tuple[str, ...] = ()
    resolved: dict[str, Any] = attrs.field(factory=dict)
