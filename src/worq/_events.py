"""Structured lifecycle events.

worq logs one structlog event per lifecycle step under stable names
(``task.enqueued``, ``task.started``, ``pool.started``, …) with flat keys
(``task_id``, ``task_name``, ``queue``, ``pid``). The library never configures
structlog; applications (and the ``worq`` CLI) decide where events go.
"""

from __future__ import annotations

import os
from typing import Any

import structlog

from worq._models import TaskMessage

__all__ = ["logger", "task_fields"]

logger: Any = structlog.get_logger("worq")


def task_fields(message: TaskMessage) -> dict[str, Any]:
    """The keys every event about one task carries."""
    return {
        "task_id": message.id,
        "task_name": message.name,
        "queue": message.queue,
        "pid": os.getpid(),
    }
