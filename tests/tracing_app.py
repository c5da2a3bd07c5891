"""A traced client and traced pools for tests/test_tracing.py, each in its own process.

Every process that imports this module with ``WORQ_TEST_SPANS`` set sets up
the OpenTelemetry SDK with an exporter that appends each finished span to
that file as a JSON line, so that the test reads the spans of a client and
of a pool's worker processes together.

``python -m tests.tracing_app URL`` is the client: inside a span ``request``
it sends ``double(21)``, ``double("x")`` (which fails) and a message whose
``traceparent`` is malformed, and waits for each.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from worq import TaskFailure, TaskSpace, get_broker
from worq.core import Broker

ts = TaskSpace("tracing")


@ts.task
def double(x: int) -> int:
    return 2 * x


class FileExporter(SpanExporter):
    """Appends each span as one JSON line: name, ids, parent, attributes, status."""

    def __init__(self, path: str) -> None:
        self._path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self._path, "a") as out:
            for span in spans:
                context = span.get_span_context()
                assert context is not None
                out.write(json.dumps({
                    "name": span.name,
                    "trace_id": f"{context.trace_id:032x}",
                    "span_id": f"{context.span_id:016x}",
                    "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                    "attributes": dict(span.attributes or {}),
                    "status": span.status.status_code.name,
                    "description": span.status.description,
                    "pid": os.getpid(),
                }) + "\n")  # fmt: skip
        return SpanExportResult.SUCCESS


def _set_up() -> None:
    path = os.environ.get("WORQ_TEST_SPANS")
    if path and not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(FileExporter(path)))
        trace.set_tracer_provider(provider)


_set_up()


def init(url: str) -> Broker:
    broker = get_broker(url)
    broker.expose(ts)
    return broker


def main(url: str) -> None:
    broker = get_broker(url)
    q = broker.queue()
    with trace.get_tracer("tests").start_as_current_span("request"):
        good = q.tracing.double(21)
        bad = q.tracing.double("x")
    assert good.wait(10)
    assert good.value == 42
    assert bad.wait(10)
    try:
        _ = bad.value
        raise AssertionError("double('x') did not fail")
    except TaskFailure:
        pass
    message = b'{"v":3,"name":"tracing.double","tp":"00-not-a-traceparent"}\n{"args":[5]}'
    assert broker.taskqueue.enqueue_task("malformed", message, keep_result=True, track=True)
    assert broker.pop_result(_Named("malformed"), 10) == 10
    broker.close()


class _Named:
    def __init__(self, task_id: str) -> None:
        self.id, self.name = task_id, "tracing.double"


if __name__ == "__main__":
    main(sys.argv[1])
