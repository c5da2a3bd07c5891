"""Value objects that travel between clients, brokers and workers."""

from __future__ import annotations

import math
import random
from typing import Any, Literal

import attrs

__all__ = [
    "MAX_SECONDS",
    "MAX_TASK_ID_BYTES",
    "ON_ERROR_VALUES",
    "ArgumentRef",
    "OnError",
    "SentTask",
    "TaskMessage",
    "TaskOptions",
    "check_seconds",
    "check_task_id",
]

OnError = Literal["fail", "pass"]
ON_ERROR_VALUES: tuple[OnError, ...] = ("fail", "pass")


MAX_SECONDS = 10 * 365 * 24 * 3600
"""Longest duration any option may give (ten years): a bound every backend can
store (Redis takes milliseconds as a 64-bit integer) and no clock arithmetic
overflows; an infinite or NaN duration is refused when the task is made."""


def check_seconds(name: str, value: object, *, zero: bool = False) -> None:
    """Refuse anything but a finite number of seconds in (0, MAX_SECONDS] (or [0, ...]).

    Raises:
        ValueError: Naming the option, what it got and the accepted range.
    """
    low = ">= 0" if zero else "> 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not (value >= 0 if zero else value > 0)
        or value > MAX_SECONDS
    ):
        raise ValueError(
            f"{name} must be a finite number of seconds {low} and at most {MAX_SECONDS} "
            f"(ten years), got {value!r}"
        )


MAX_TASK_ID_BYTES = 512
"""Longest task id, in UTF-8 bytes: ids are part of every backend key."""


def check_task_id(task_id: object, where: str) -> str:
    """``task_id`` if it is a usable id: a non-empty str of at most MAX_TASK_ID_BYTES.

    Raises:
        ValueError: Naming ``where`` (the task and queue) and the offending id.
    """
    if (
        isinstance(task_id, str)
        and task_id
        and len(task_id.encode("utf-8", "surrogatepass")) <= MAX_TASK_ID_BYTES
    ):
        return task_id
    shown = repr(task_id)
    if len(shown) > 80:
        shown = f"{shown[:60]}... ({len(shown)} characters)"
    raise ValueError(
        f"{where}: task id must be a non-empty str of at most {MAX_TASK_ID_BYTES} bytes "
        f"(UTF-8), got {shown}"
    )


def _positive_number(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_seconds(attribute.name, value)


def _non_negative_number(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_seconds(attribute.name, value, zero=True)


def _optional_positive_number(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        _positive_number(instance, attribute, value)


def _retries(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"retries must be an int >= 0, got {value!r}")


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
            runs; its lease lapses after a few missed beats.
        retries: How many times to run the task again after it raised, its
            worker died, or its lease lapsed; 0 (default) runs it at most once.
        retry_backoff: Seconds before the first retry; each further retry
            waits twice as long, with jitter, up to ``retry_backoff_max``.
        retry_backoff_max: Longest wait before a retry.
        time_limit: Seconds a run may take; past it the process pool kills the
            worker and the thread pool fails the task (its thread runs on).
    """

    on_error: OnError = attrs.field(default="fail", validator=_on_error)
    ignore_result: bool = attrs.field(default=False, validator=_boolean)
    result_timeout: float = attrs.field(default=3600, validator=_positive_number)
    heartrate: float = attrs.field(default=30, validator=_positive_number)
    retries: int = attrs.field(default=0, validator=_retries)
    retry_backoff: float = attrs.field(default=1, validator=_non_negative_number)
    retry_backoff_max: float = attrs.field(default=300, validator=_non_negative_number)
    time_limit: float | None = attrs.field(default=None, validator=_optional_positive_number)

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before running again after run number ``attempt`` (1-based) failed.

        Exponential (``retry_backoff * 2 ** (attempt - 1)``), capped at
        ``retry_backoff_max``, with "equal jitter" (between half and all of it)
        so that tasks failing together do not all retry at the same instant.
        """
        ceiling = min(self.retry_backoff_max, self.retry_backoff * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


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
        attempt: Worker side only, not encoded: which run this is (1 = first).
        lease: Worker side only, not encoded: the token that lets this run
            heartbeat, retry or finish the task; "" for a fire-and-forget task
            that is not tracked.
    """

    id: str
    name: str
    queue: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    options: TaskOptions = attrs.field(factory=TaskOptions)
    refs: tuple[str, ...] = ()
    resolved: dict[str, Any] = attrs.field(factory=dict)
    attempt: int = 1
    lease: str = ""

    @property
    def tracked(self) -> bool:
        """Whether the backend keeps the task until a worker finishes it.

        A task is tracked when someone can observe its outcome (its result,
        its dependants' arguments) or when it may run again (retries): then it
        is held under a lease and re-run or expired if its worker vanishes.
        A fire-and-forget task without retries is forgotten once taken.
        """
        return not self.options.ignore_result or self.options.retries > 0 or bool(self.refs)


@attrs.frozen(kw_only=True)
class SentTask:
    """A task as its client sent it: what :attr:`worq.task.Deferred.task` holds.

    Attributes:
        id: The task's id.
        name: Its dotted name.
        args: The positional arguments as the caller passed them (a Deferred
            argument is still that Deferred); None when not known here, for a
            Deferred rebuilt from an id: the arguments then live only in the
            backend.
        kwargs: The keyword arguments, likewise; None when not known here.
        options: The options it was sent with; None when not known here.
    """

    id: str
    name: str
    args: tuple[Any, ...] | None = None
    kwargs: dict[str, Any] | None = None
    options: TaskOptions | None = None
