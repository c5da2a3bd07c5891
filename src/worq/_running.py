"""Running one task on a worker: arguments in, an outcome out.

Kept apart from :mod:`worq.core` because it is the part that runs user code:
looking the task up, handing over the results of the tasks it depends on,
converting arguments to its annotations, calling it, and turning whatever it
does into an :class:`Outcome` with the events that say so.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping
from typing import Any

import attrs

from worq._arguments import resolve_refs
from worq._events import logger, task_fields
from worq._exposed import ArgumentMismatch, ExposedTask, public_names
from worq._models import TaskMessage
from worq.exceptions import SerializationError, TaskFailure
from worq.typing import Codec

__all__ = ["DEPENDENCY_FAILED", "Outcome", "dependency_failed", "run_task"]


@attrs.frozen
class Outcome:
    """What running a task produced.

    Attributes:
        value: The return value, or a TaskFailure saying why there is none.
        retry_reason: Why running it again may succeed (the task raised); None
            when it may not (it succeeded, is unknown, got wrong arguments, or a
            dependency failed).
        aborted: The ``BaseException`` that is not an ``Exception``
            (``SystemExit``, ``KeyboardInterrupt``...) the task raised, if any:
            the task failed like any other, and the pool decides what the
            exception means for the worker.
    """

    value: Any
    retry_reason: str | None = None
    aborted: BaseException | None = None


def run_task(
    tasks: Mapping[str, ExposedTask],
    codec: Codec,
    task: TaskMessage,
    arguments: Mapping[str, bytes],
) -> Outcome:
    """Run ``task`` with the encoded results handed to it; log how it went."""
    fields = task_fields(task)
    logger.info("task.started", **fields, attempt=task.attempt)
    started = time.perf_counter()
    outcome = _run(tasks, codec, task, arguments, fields)
    duration = round(time.perf_counter() - started, 6)
    if isinstance(outcome.value, TaskFailure):
        logger.warning(
            "task.failed", **fields, error=outcome.value.error, duration_s=duration,
            attempt=task.attempt,
        )  # fmt: skip
    else:
        logger.info("task.succeeded", **fields, duration_s=duration, attempt=task.attempt)
    return outcome


def _run(
    tasks: Mapping[str, ExposedTask],
    codec: Codec,
    task: TaskMessage,
    arguments: Mapping[str, bytes],
    fields: dict[str, Any],
) -> Outcome:
    def failure(error: str) -> TaskFailure:
        return TaskFailure(task.name, task.queue, task.id, error)

    exposed = tasks.get(task.name)
    if exposed is None:
        return Outcome(_unknown(tasks, task, fields))
    values = dict(task.resolved)
    for ref in task.refs:
        values[ref] = _argument_value(codec, task, ref, arguments.get(ref))
    if task.options.on_error == "fail":
        for value in values.values():
            if isinstance(value, TaskFailure):
                return Outcome(failure(dependency_failed(value)))
    args, kwargs = (
        resolve_refs(task.args, task.kwargs, values) if values else (task.args, task.kwargs)
    )
    try:
        return Outcome(exposed.call(codec, args, kwargs))
    except ArgumentMismatch as exc:
        return Outcome(failure(str(exc)))
    except Exception as exc:
        logger.error("task.raised", **fields, exc_info=True)
        error = f"{type(exc).__name__}: {exc}"
        return Outcome(failure(error), retry_reason=error)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt...: the task failed
        logger.error("task.aborted", **fields, error=repr(exc), exc_info=True)
        error = f"{type(exc).__name__}: {exc}"
        return Outcome(failure(error), retry_reason=error, aborted=exc)


def _unknown(
    tasks: Mapping[str, ExposedTask], task: TaskMessage, fields: dict[str, Any]
) -> TaskFailure:
    """WorQ 1.1's "no such task", with a note saying what this worker does expose.

    The error text stays exactly WorQ 1.1's, which code bases compare; the note
    (shown under the traceback, carried by the codec) tells the reader what to
    look at: the task count and the nearest exposed names.
    """
    names = public_names(tasks)
    nearest = difflib.get_close_matches(task.name, names, n=3, cutoff=0.6)
    suggestion = f"; did you mean {' or '.join(map(repr, nearest))}?" if nearest else ""
    count = f"{len(names)} task{'' if len(names) == 1 else 's'}"
    note = (
        f"the worker of queue {task.queue!r} exposes {count}{suggestion} (check the task's "
        "name, and that the worker's broker exposes it: broker.expose(taskspace))"
    )
    logger.error("task.unknown", **fields, exposed=len(names), suggestions=nearest)
    failure = TaskFailure(task.name, task.queue, task.id, "no such task")
    failure.add_note(note)
    return failure


DEPENDENCY_FAILED = "dependency failed: "
ROOT_CAUSE = "; root cause: "


def dependency_failed(failure: TaskFailure) -> str:
    """The error of a task whose Deferred argument ended with ``failure``.

    It names the failed dependency and the root cause, once: along a chain of
    dependants the text keeps a constant size instead of nesting each link's
    whole error in the next.
    """
    if not failure.error.startswith(DEPENDENCY_FAILED):
        return f"{DEPENDENCY_FAILED}{failure}"  # the dependency is the root cause
    own = failure.error[len(DEPENDENCY_FAILED) :]
    root = own.split(ROOT_CAUSE, 1)[1] if ROOT_CAUSE in own else own
    where = f"{failure.task_name} [{failure.queue}:{failure.task_id}]"
    return f"{DEPENDENCY_FAILED}{where}{ROOT_CAUSE}{root}"


def _argument_value(codec: Codec, task: TaskMessage, ref: str, data: bytes | None) -> Any:
    if data is None:
        return TaskFailure("?", task.queue, ref, "result was not handed over to the dependant")
    try:
        return codec.decode_value(data)
    except SerializationError as exc:
        return TaskFailure("?", task.queue, ref, f"result could not be decoded: {exc}")
