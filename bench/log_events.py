#!/usr/bin/env python
"""What one worq event costs, in nanoseconds per call.

An event below the configured level should cost about a bare method call, so
the first row is that floor: a call with the same arguments to a method that
does nothing. Then a ``task.started`` debug event filtered out by the
standard library's default level (nothing configured: the ``worq`` logger
inherits the root's WARNING), the same filtered out by structlog's filtering
bound logger at INFO, and, for scale, an info event that structlog renders to
a null sink.

Each event is measured in both call styles: ``logger.debug(event, task,
...)``, which computes the task's keys only once the event passes the level
check, and the older ``logger.debug(event, **task_fields(task), ...)``, which
builds them before the call. Each figure is the median of 5 runs.
"""

from __future__ import annotations

import logging
import statistics
import timeit
from typing import Any

import structlog

from worq._events import logger, task_fields
from worq.models import Envelope

RUNS = 5


class _Nothing:
    """The floor: a method that takes what ``logger.debug`` takes and does nothing."""

    def debug(self, event: str, task: Envelope | None = None, /, **fields: Any) -> None:
        """Does nothing, so timing it times the call itself."""


def ns_per_call(statement: str, names: dict[str, Any]) -> float:
    """Median over ``RUNS`` runs of the nanoseconds one ``statement`` takes."""
    timer = timeit.Timer(statement, globals=names)
    number, _ = timer.autorange()
    return statistics.median(timer.repeat(RUNS, number)) / number * 1e9


def measure(label: str, level: str, names: dict[str, Any]) -> None:
    """Print the cost of one event at ``level`` in each call style."""
    for style, statement in (
        ("positional task", f'logger.{level}("task.started", task, attempt=1)'),
        ("**task_fields(task)", f'logger.{level}("task.started", **task_fields(task), attempt=1)'),
    ):
        print(f"{label + ', ' + style:<62} {ns_per_call(statement, names):8.0f} ns")


def main() -> None:
    """Print one line per case."""
    task = Envelope(id="38b891bb944f4722927d3bc55d4abee4", name="tasks.num", queue="default")
    names = {"logger": logger, "task_fields": task_fields, "task": task, "nothing": _Nothing()}
    floor = ns_per_call('nothing.debug("task.started", task, attempt=1)', names)
    print(f"{'bare method call (floor)':<62} {floor:8.0f} ns")

    structlog.reset_defaults()
    measure("debug, stdlib at WARNING (filtered)", "debug", names)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.ReturnLoggerFactory(),  # the null sink
    )
    try:
        measure("debug, structlog at INFO (filtered)", "debug", names)
        measure("info, structlog to a null sink (emitted)", "info", names)
    finally:
        structlog.reset_defaults()


if __name__ == "__main__":
    main()
