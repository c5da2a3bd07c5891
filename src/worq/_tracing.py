"""OpenTelemetry traces of sending and running tasks (the ``worq[otel]`` extra).

Sending a task is a span (``worq.send <task>``), and the W3C ``traceparent``
of the sending context travels in the task's envelope (``Envelope.trace``);
the worker runs the task inside a span (``worq.run <task>``) that is that
one's child, with the task's id, name, queue and attempt, and its error
when it fails. So a trace follows a request through a web handler, the task
it sends, and the tasks that task sends.

Tracing is on once the application set a tracer provider
(``opentelemetry.trace.set_tracer_provider``, as the SDK's setup does).
worq never imports OpenTelemetry itself unless the application did: in a
process where ``opentelemetry.trace`` was never imported no provider can be
set, and every function here returns after one dictionary lookup; where it
was (redis-py 8 imports it when it is installed), after a look at the
provider OpenTelemetry holds: its global, read directly, since
``get_tracer_provider()`` looks the environment up on every call while no
provider is set (about 1 µs, three times per task), with that call as the
fallback. The tracer is made once per provider.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import TYPE_CHECKING, Any

from worq._events import logger
from worq.models import Envelope

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["TRACER_NAME", "current_traceparent", "running", "sending", "set_failed"]

TRACER_NAME = "worq"

_UNTRACED: contextlib.nullcontext[None] = contextlib.nullcontext()
_propagators: list[Any] = []
"""The W3C trace-context propagator, made on first use."""
_warned_invalid = False
"""Whether this process already logged a malformed traceparent (logged once)."""


def _tracer() -> Tracer | None:
    """worq's tracer, when the application set a tracer provider; else None."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # never imported here: no provider can have been set
        return None
    provider: Any = getattr(trace, "_TRACER_PROVIDER", _NOT_HELD)
    if provider is None and not _provider_in_environment():
        return None
    if provider is None or provider is _NOT_HELD:
        provider = trace.get_tracer_provider()
    if provider is _tracers[0]:
        cached: Tracer | None = _tracers[1]
        return cached
    tracer: Tracer | None = None
    if not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        tracer = provider.get_tracer(TRACER_NAME)
    _tracers[:] = [provider, tracer]
    return tracer


_NOT_HELD = object()
"""An OpenTelemetry that no longer keeps its provider in ``_TRACER_PROVIDER``."""
_tracers: list[Any] = [_NOT_HELD, None]
"""The provider last seen, and worq's tracer from it (None when it traces nothing)."""


@functools.cache
def _provider_in_environment() -> bool:
    """Whether OpenTelemetry may make its provider from the environment on first use."""
    return "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def _propagator() -> Any:
    if not _propagators:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        _propagators.append(TraceContextTextMapPropagator())
    return _propagators[0]


def sending(name: str, queue: str, count: int = 1) -> contextlib.AbstractContextManager[object]:
    """The span of sending ``count`` tasks named ``name``; when not tracing, a context
    that does nothing (one shared object: no per-call cost beyond the check)."""
    tracer = _tracer()
    if tracer is None:
        return _UNTRACED
    from opentelemetry.trace import SpanKind

    attributes: dict[str, str | int] = {"worq.task.name": name, "worq.queue": queue}
    if count != 1:
        attributes["worq.batch.size"] = count
    return tracer.start_as_current_span(
        f"worq.send {name}", kind=SpanKind.PRODUCER, attributes=attributes
    )


def current_traceparent() -> str:
    """The ``traceparent`` of the current span, to send with a task; "" when none."""
    if _tracer() is None:
        return ""
    carrier: dict[str, str] = {}
    _propagator().inject(carrier)
    return carrier.get("traceparent", "")


def running(task: Envelope) -> contextlib.AbstractContextManager[Span | None]:
    """The span of one run of ``task``, a child of its sender's; a context yielding
    None when not tracing.

    A malformed ``traceparent`` is logged once per process
    (``trace.context_invalid``), and the run gets a span of its own.
    """
    tracer = _tracer()
    if tracer is None:
        return _UNTRACED
    from opentelemetry.context import Context
    from opentelemetry.trace import SpanKind, get_current_span

    parent = Context()
    if task.trace:
        parent = _propagator().extract({"traceparent": task.trace})
        if not get_current_span(parent).get_span_context().is_valid:
            _invalid(task)
    attributes: dict[str, str | int] = {
        "worq.task.id": task.id, "worq.task.name": task.name,
        "worq.queue": task.queue, "worq.attempt": task.attempt,
    }  # fmt: skip
    return tracer.start_as_current_span(
        f"worq.run {task.name}", context=parent, kind=SpanKind.CONSUMER,
        attributes=attributes, record_exception=False, set_status_on_exception=False,
    )  # fmt: skip


def set_failed(span: Span | None, error: str) -> None:
    """Mark a run's span failed, with the error its TaskFailure carries."""
    if span is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, error))
        span.add_event("exception", {"exception.message": error})


def _invalid(task: Envelope) -> None:
    global _warned_invalid
    if not _warned_invalid:
        _warned_invalid = True
        logger.warning(
            "trace.context_invalid", task, traceparent=task.trace[:100],
            note="the run is traced without its sender's span; logged once per process",
        )  # fmt: skip
