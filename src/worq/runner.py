"""Running a task: the exposed tasks, and one call from arguments to an outcome.

A :class:`Runner` is what a worker needs to run tasks and nothing more: the
tasks a broker exposes and the codec that decodes their arguments and encodes
their outcomes. It never talks to a backend, so a process pool's worker
process holds a Runner, and the pool process, which owns the backend
connection, does the rest (see :mod:`worq.pool._pipeline`).

Running one task means: looking it up, handing over the results of the tasks
it depends on, converting arguments to its annotations, calling it, and
turning whatever it does into an :class:`~worq.models.Outcome` with the
events that say so.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import inspect
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from worq._arguments import resolve_refs
from worq._checks import is_coroutine_function
from worq._events import logger
from worq._tracing import running, set_failed
from worq._wire import encode_task, join_task
from worq.exceptions import SerializationError, TaskFailure
from worq.models import Envelope, Outcome, TaskMessage
from worq.typing import Codec

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = [
    "DEPENDENCY_FAILED",
    "NOOP_TASK",
    "EncodedOutcome",
    "ExposedTask",
    "Runner",
    "dependency_failed",
    "public_names",
]

NOOP_TASK = "worq:noop"
"""A task every broker runs; its name cannot clash with a dotted task path."""


def public_names(tasks: Mapping[str, ExposedTask]) -> list[str]:
    """The names of the tasks a user exposed, sorted: every one but NOOP_TASK."""
    return sorted(name for name in tasks if name != NOOP_TASK)


class ArgumentMismatch(Exception):
    """The arguments do not fit the task's signature or annotations."""


@attrs.frozen
class PositionalParameters:
    """A task's parameters when none is ``*args``, ``**kwargs`` or keyword-only: a call
    with positional arguments only is then bound by position, without
    ``Signature.bind`` (which builds a BoundArguments on every run).

    Attributes:
        hints: Each parameter's name and the hint its value is converted to
            (None: not converted), in order.
        required: How many come first without a default.
    """

    hints: tuple[tuple[str, Any], ...]
    required: int

    @classmethod
    def of(cls, signature: inspect.Signature, hints: dict[str, Any]) -> PositionalParameters | None:
        """The signature's parameters, if every one can be passed by position."""
        parameters = list(signature.parameters.values())
        by_position = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if not all(p.kind in by_position for p in parameters):
            return None
        required = sum(p.default is inspect.Parameter.empty for p in parameters)
        return cls(tuple((p.name, hints.get(p.name)) for p in parameters), required)

    def fit(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether a call with these arguments binds by position alone, every parameter
        without a default given."""
        return not kwargs and self.required <= len(args) <= len(self.hints)


@attrs.frozen
class ExposedTask:
    """A callable registered on a worker, with what is needed to call it from a message.

    Attributes:
        name: The dotted name clients use.
        fn: The function or bound method.
        signature: ``fn``'s signature; None for callables without one (some builtins).
        hints: Annotations of the parameters worth converting (not ``Any``),
            so JSON values become e.g. attrs instances or Decimals.
        is_async: ``fn`` is a coroutine function (``async def``): calling it
            makes a coroutine, which a pool runs on an event loop.
        positional: Its parameters when every one can be passed by position
            (see :class:`PositionalParameters`); None otherwise.
    """

    name: str
    fn: Callable[..., Any]
    signature: inspect.Signature | None
    hints: dict[str, Any]
    is_async: bool = False
    positional: PositionalParameters | None = None

    @classmethod
    def from_callable(cls, name: str, fn: Callable[..., Any]) -> ExposedTask:
        """Inspect ``fn`` once, when it is exposed, not on every call."""
        try:
            signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without introspectable signatures
            signature = None
        try:
            annotations = typing.get_type_hints(fn)
        except Exception:  # unresolvable forward references: call with values as decoded
            annotations = {}
        hints = {
            param: hint
            for param, hint in annotations.items()
            if param != "return" and hint is not Any and hint is not object
        }
        hints = hints if signature is not None else {}
        positional = None if signature is None else PositionalParameters.of(signature, hints)
        return cls(name, fn, signature, hints, is_coroutine_function(fn), positional)

    def bind(
        self, codec: Codec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Callable[[], Any]:
        """The task's call, its arguments first converted to the annotated types.

        Raises:
            ArgumentMismatch: The arguments do not fit the signature or annotations.
        """
        positional = self.positional
        if positional is not None and positional.fit(args, kwargs):
            if self.hints:
                args = self._convert_positional(codec, args, positional.hints)
        elif self.hints:
            args, kwargs = self._convert(codec, args, kwargs)
        elif self.signature is not None:
            try:  # a TypeError from the call itself could come from inside the task
                self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise ArgumentMismatch(f"TypeError: {exc}") from None
        return functools.partial(self.fn, *args, **kwargs)

    def _convert_positional(
        self, codec: Codec, args: tuple[Any, ...], hints: tuple[tuple[str, Any], ...]
    ) -> tuple[Any, ...]:
        return tuple(
            value if hint is None else self._structure(codec, param, value, hint)
            for value, (param, hint) in zip(args, hints, strict=False)
        )

    @staticmethod
    def _structure(codec: Codec, param: str, value: Any, hint: Any) -> Any:
        try:
            return codec.structure(value, hint)
        except Exception as exc:
            raise ArgumentMismatch(
                f"argument {param!r} does not fit its annotation {_hint_name(hint)}: {exc}"
            ) from None

    def _convert(
        self, codec: Codec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        signature = self.signature
        if signature is None:  # never with hints: from_callable drops them
            return args, kwargs
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ArgumentMismatch(f"TypeError: {exc}") from None
        for param, value in bound.arguments.items():
            hint = self.hints.get(param)
            if hint is None:
                continue
            kind = signature.parameters[param].kind
            structure = functools.partial(self._structure, codec, param, hint=hint)
            if kind is inspect.Parameter.VAR_POSITIONAL:
                converted: Any = tuple(structure(item) for item in value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                converted = {key: structure(item) for key, item in value.items()}
            else:
                converted = structure(value)
            bound.arguments[param] = converted
        return bound.args, bound.kwargs


class _ThreadLoop:
    """The event loop one thread runs async tasks on, made on first use.

    A pool closes it as its worker thread ends (:func:`close_thread_loop`);
    one left open when its thread ends is closed as it is collected.
    """

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._open = False

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        self._open = True
        return self._runner.run(coroutine)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._runner.close()

    def __del__(self) -> None:
        if self._open:  # its thread ended without close(): no loop runs it any more
            self._runner.get_loop().close()


_thread_loops = threading.local()


def run_coroutine_here(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run an ``async def`` task's coroutine to its end on this thread's own event loop.

    How the thread and process pools run async tasks: each worker thread
    keeps one loop for all the coroutines it runs (made on first use), so
    a task may leave loop-bound resources (a client session, say) for the
    next one on that thread.

    Raises:
        RuntimeError: This thread already runs an event loop (``Broker.invoke``
            called from async code): the coroutine is closed unrun.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # none runs here: the usual case
        here: _ThreadLoop | None = getattr(_thread_loops, "loop", None)
        if here is None:
            here = _thread_loops.loop = _ThreadLoop()
        return here.run(coroutine)
    coroutine.close()
    raise RuntimeError(
        "an async task cannot run in a thread that already runs an event loop: run it "
        "in a worker pool (worq.pool.asyncio runs it on its own loop)"
    )


def close_thread_loop() -> None:
    """Close this thread's loop for async tasks, if it made one: a worker thread's last step."""
    here: _ThreadLoop | None = getattr(_thread_loops, "loop", None)
    if here is not None:
        del _thread_loops.loop
        here.close()


def _hint_name(hint: Any) -> str:
    return hint.__qualname__ if isinstance(hint, type) else repr(hint)


def _noop() -> None:
    """Does nothing: the wake-up task WorQ 1.1-style pools sent; still run if sent."""


@attrs.frozen
class EncodedOutcome:
    """A run's outcome as it is stored: what a worker process sends back to its pool.

    Attributes:
        data: The encoded value or TaskFailure.
        retry_reason: Why another run may succeed; None if it may not.
        error: The TaskFailure's error when the run failed (what the failed-task
            registry files, should no retry follow); None when it succeeded.
        message: For a failed task the backend forgot once taken (fire and
            forget, not tracked), its message as sent, for the registry to keep.
    """

    data: bytes
    retry_reason: str | None = None
    error: str | None = None
    message: bytes | None = None


class Runner:
    """Runs tasks: the exposed tasks plus the codec; needs no backend.

    Args:
        codec: Decodes arguments and encodes outcomes.
    """

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.tasks: dict[str, ExposedTask] = {
            NOOP_TASK: ExposedTask.from_callable(NOOP_TASK, _noop)
        }
        """Every task this runner can run, by dotted name (NOOP_TASK included)."""

    def expose(self, name: str, fn: Callable[..., Any]) -> None:
        """Run ``fn`` for tasks called ``name`` (replacing any task of that name)."""
        self.tasks[name] = ExposedTask.from_callable(name, fn)

    def task_names(self) -> list[str]:
        """The names of the tasks a user exposed, sorted (see :func:`public_names`)."""
        return public_names(self.tasks)

    def run(self, task: TaskMessage, arguments: Mapping[str, bytes]) -> Outcome:
        """Run ``task`` with the encoded results handed to it; log how it went.

        An ``async def`` task runs on this thread's own event loop (see
        :func:`run_coroutine_here`).
        """
        with running(task) as span:
            logger.info("task.started", task, attempt=task.attempt, queue_wait_s=queue_wait(task))
            started = time.perf_counter()
            call = self._prepare(task, arguments)
            outcome = call if isinstance(call, Outcome) else self._call(task, call)
            self._log_end(task, outcome, started, span)
        return outcome

    async def run_async(
        self,
        task: TaskMessage,
        arguments: Mapping[str, bytes],
        run_sync: Callable[[Callable[[], Any]], Awaitable[Any]],
        watch: Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]] | None = None,
    ) -> Outcome:
        """:meth:`run` on an event loop: an async task is awaited, a sync one goes to ``run_sync``.

        A task past its ``time_limit`` fails saying so: a coroutine is
        cancelled (and the task may retry, as after a killed worker); a sync
        task's thread cannot be stopped, so it runs on and its outcome is dropped.

        Args:
            run_sync: Runs a sync task's call off the loop (in a thread).
            watch: Wraps an async task's coroutine (the asyncio pool times its steps).
        """
        with running(task) as span:
            return await self._run_async(task, arguments, run_sync, watch, span)

    async def _run_async(
        self,
        task: TaskMessage,
        arguments: Mapping[str, bytes],
        run_sync: Callable[[Callable[[], Any]], Awaitable[Any]],
        watch: Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]] | None,
        span: Span | None,
    ) -> Outcome:
        logger.info("task.started", task, attempt=task.attempt, queue_wait_s=queue_wait(task))
        started = time.perf_counter()
        call = self._prepare(task, arguments)
        if isinstance(call, Outcome):
            outcome = call
        else:
            limit = task.options.time_limit
            is_async = self.tasks[task.name].is_async
            try:
                async with asyncio.timeout(limit) as within:
                    if is_async:
                        coroutine = call()
                        value = await (coroutine if watch is None else watch(coroutine))
                    else:
                        value = await run_sync(call)
                        if inspect.iscoroutine(value):  # a sync callable that made a coroutine
                            value = await value
                outcome = Outcome(value)
            except TimeoutError as exc:
                if not within.expired():  # the task's own TimeoutError
                    outcome = self._raised(task, exc)
                else:
                    outcome = self._overran(task, limit, is_async)
            except asyncio.CancelledError as exc:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the run itself is being cancelled: not the task's outcome
                outcome = self._raised(task, exc)  # the task's own cancelled await
            except BaseException as exc:
                outcome = self._raised(task, exc)
        self._log_end(task, outcome, started, span)
        return outcome

    def _log_end(
        self, task: TaskMessage, outcome: Outcome, started: float, span: Span | None
    ) -> None:
        duration = round(time.perf_counter() - started, 6)
        if isinstance(outcome.value, TaskFailure):
            set_failed(span, outcome.value.error)
            logger.warning(
                "task.failed", task, error=outcome.value.error, duration_s=duration,
                attempt=task.attempt,
            )  # fmt: skip
        else:
            logger.info("task.succeeded", task, duration_s=duration, attempt=task.attempt)

    def run_encoded(
        self, envelope: Envelope, payload: bytes, arguments: Mapping[str, bytes]
    ) -> EncodedOutcome:
        """Decode the payload, run the task and encode its outcome: a worker process's job.

        A payload this runner cannot decode fails the task, without retry (no
        run would decode it better), with the reason.
        """
        try:
            task = TaskMessage.join(envelope, self.codec.decode_payload(payload))
        except SerializationError as exc:
            reason = f"worker could not decode the message ({self.codec.name}): {exc}"
            logger.error("task.rejected", envelope, error=reason)
            failure = TaskFailure(envelope.name, envelope.queue, envelope.id, reason)
            return self.encode(envelope, failure, sent=(envelope, payload))
        outcome = self.run(task, arguments)
        return self.encode(task, outcome.value, outcome.retry_reason, (envelope, payload))

    def encode(
        self,
        task: Envelope,
        value: Any,
        retry_reason: str | None = None,
        sent: tuple[Envelope, bytes] | None = None,
    ) -> EncodedOutcome:
        """A task's outcome as it is stored, saying whether it failed and why; a value the
        serializer refuses becomes a TaskFailure.

        Args:
            sent: The task's envelope and payload bytes, when the caller holds
                them undecoded (a process pool's worker); else ``task`` is
                encoded again when its message is needed (see EncodedOutcome).
        """
        try:
            data = self.codec.encode_value(value)
        except SerializationError as exc:
            logger.error("result.unencodable", task, error=str(exc))
            value = TaskFailure(
                task.name, task.queue, task.id, f"result could not be encoded: {exc}"
            )
            data = self.codec.encode_value(value)
        if not isinstance(value, TaskFailure):
            return EncodedOutcome(data, retry_reason)
        message = None
        if not task.tracked:
            if sent is not None:
                message = join_task(*sent)
            elif isinstance(task, TaskMessage):
                message = encode_task(self.codec, task)
        return EncodedOutcome(data, retry_reason, value.error, message)

    def encode_outcome(self, task: Envelope, value: Any) -> bytes:
        """Encode a task's outcome; one the serializer refuses becomes a TaskFailure."""
        return self.encode(task, value).data

    def _prepare(
        self, task: TaskMessage, arguments: Mapping[str, bytes]
    ) -> Outcome | Callable[[], Any]:
        """The task's call, its arguments resolved and converted; or the Outcome
        that ends it before any call: unknown task, failed dependency, wrong arguments."""

        def failure(error: str) -> TaskFailure:
            return TaskFailure(task.name, task.queue, task.id, error)

        exposed = self.tasks.get(task.name)
        if exposed is None:
            return Outcome(_unknown(self.tasks, task))
        values = dict(task.resolved)
        for ref in task.refs:
            values[ref] = _argument_value(self.codec, task, ref, arguments.get(ref))
        if task.options.on_error == "fail":
            for value in values.values():
                if isinstance(value, TaskFailure):
                    return Outcome(failure(dependency_failed(value)))
        args, kwargs = (
            resolve_refs(task.args, task.kwargs, values) if values else (task.args, task.kwargs)
        )
        try:
            return exposed.bind(self.codec, args, kwargs)
        except ArgumentMismatch as exc:
            return Outcome(failure(str(exc)))

    def _call(self, task: TaskMessage, call: Callable[[], Any]) -> Outcome:
        """Make the task's call here, in this thread; what it returned or raised."""
        try:
            value = call()
            if inspect.iscoroutine(value):
                value = run_coroutine_here(value)
            return Outcome(value)
        except BaseException as exc:
            return self._raised(task, exc)

    @staticmethod
    def _raised(task: TaskMessage, exc: BaseException) -> Outcome:
        """The outcome of a task that raised ``exc``: a failure another run may mend."""
        error = f"{type(exc).__name__}: {exc}"
        failure = TaskFailure(task.name, task.queue, task.id, error)
        if isinstance(exc, Exception):
            logger.error("task.raised", task, exc_info=exc)
            return Outcome(failure, retry_reason=error)
        # SystemExit, KeyboardInterrupt...: the task failed; the pool decides the rest
        logger.error("task.aborted", task, error=repr(exc), exc_info=exc)
        return Outcome(failure, retry_reason=error, aborted=exc)

    @staticmethod
    def _overran(task: TaskMessage, limit: float | None, cancelled: bool) -> Outcome:
        """The outcome of a run on an event loop that passed its time limit."""
        logger.error("task.time_limit_exceeded", task, time_limit_s=limit)
        if cancelled:
            error = f"time limit of {limit}s exceeded: its coroutine was cancelled"
            return Outcome(TaskFailure(task.name, task.queue, task.id, error), retry_reason=error)
        error = (
            f"time limit of {limit}s exceeded (its thread cannot be stopped: it goes on, "
            "and its outcome will be dropped)"
        )
        return Outcome(TaskFailure(task.name, task.queue, task.id, error))


def queue_wait(task: Envelope) -> float | None:
    """Seconds a task waited in its queue before its first run began: from when it was
    due (sent, or its delay or schedule came) to now. None for later runs (their wait
    is the retry's backoff), for tasks that wait for Deferred arguments (theirs is
    their dependencies' run time) and for tasks whose due time is unknown; 0 when the
    sender's clock is ahead of this one."""
    if task.attempt != 1 or task.refs or task.due_ms is None:
        return None
    return waited(task.due_ms)


def waited(due_ms: int) -> float:
    """Seconds since ``due_ms`` (ms since the epoch), to the millisecond; 0 when it is
    still ahead (the sender's clock ahead of this one)."""
    return max(0.0, round(time.time() - due_ms / 1000, 3))


def _unknown(tasks: Mapping[str, ExposedTask], task: TaskMessage) -> TaskFailure:
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
    logger.error("task.unknown", task, exposed=len(names), suggestions=nearest)
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
