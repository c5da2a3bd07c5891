"""A backend that drifted from the TaskQueue Protocol fails mypy (see check_protocols.py)."""

from __future__ import annotations

from worq.queue.memory import TaskQueue as MemoryTaskQueue
from worq.typing import TaskQueue


class Drifted(MemoryTaskQueue):
    """A backend whose lease renewal took another signature."""

    def renew_lease(self, task_id: str) -> bool:  # type: ignore[override]  # the drift under test
        return True


def conforms(backend: Drifted) -> TaskQueue:
    checked: TaskQueue = backend  # E: assignment
    return checked
