"""The outcome of a task as the tests look at it: its value, or the failure."""

from __future__ import annotations

from typing import Any

from worq import Deferred, TaskFailure
from worq.testing import WAIT


def outcome(deferred: Deferred[Any]) -> Any:
    """Wait for a Deferred; its value or the TaskFailure it ended with."""
    assert deferred.wait(WAIT), repr(deferred)
    try:
        return deferred.value
    except TaskFailure as failure:
        return failure
