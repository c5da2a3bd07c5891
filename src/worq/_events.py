"""Structured lifecycle events.

worq logs one event per lifecycle step under stable names (``task.enqueued``,
``task.started``, ``pool.started``, …) with flat keys (``task_id``,
``task_name``, ``queue``, ``pid``). The library never configures logging:

- when the application has configured structlog (``structlog.configure``),
  events go through it, with every key intact;
- otherwise they go to the standard library logger ``"worq"`` as one line
  each, so they follow ``logging`` configuration (``logging.basicConfig``,
  levels, handlers) and stay quiet below WARNING by default, as a library's
  logs should.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import structlog

from worq._models import TaskMessage

__all__ = ["logger", "task_fields"]


class _EventLogger:
    """Sends each event to structlog if it is configured, else to stdlib ``logging``."""

    def __init__(self) -> None:
        self._structlog: Any = structlog.get_logger("worq")
        self._stdlib: Any = structlog.wrap_logger(
            logging.getLogger("worq"),
            processors=[
                structlog.stdlib.filter_by_level,  # skip rendering what logging drops
                structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0),
            ],
            wrapper_class=structlog.stdlib.BoundLogger,
        )

    def _target(self) -> Any:
        return self._structlog if structlog.is_configured() else self._stdlib

    def debug(self, event: str, **fields: Any) -> None:
        self._target().debug(event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._target().info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._target().warning(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._target().error(event, **fields)


logger = _EventLogger()


def task_fields(message: TaskMessage) -> dict[str, Any]:
    """The keys every event about one task carries."""
    return {
        "task_id": message.id,
        "task_name": message.name,
        "queue": message.queue,
        "pid": os.getpid(),
    }
