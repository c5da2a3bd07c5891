"""Checks of what users pass in (durations, task ids, callables), naming the culprit."""

from __future__ import annotations

import functools
import inspect
import math

__all__ = [
    "MAX_SECONDS",
    "MAX_TASK_ID_BYTES",
    "check_seconds",
    "check_task_id",
    "is_coroutine_function",
]


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


def is_coroutine_function(fn: object) -> bool:
    """``fn`` is an ``async def`` function, or a partial or callable object of one."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # an object whose __call__ is async
    )
