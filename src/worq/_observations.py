"""What a pool counts of the events of the runs it ends: the vocabulary its metrics
(:mod:`worq.metrics`) and its per-minute stats (:mod:`worq.stats`) share, and what a
process pool's worker sends its pool (see :mod:`worq.pool._worker`)."""

from __future__ import annotations

from typing import Any

from worq.models import Envelope

__all__ = ["OUTCOMES", "WAITED", "Observation", "observation"]

OUTCOMES = {
    "task.succeeded": "succeeded",
    "task.failed": "failed",
    "task.retrying": "retried",
    "task.expired": "expired",
    "task.lease_lost": "lease_lost",
}
"""The events counted in ``worq_tasks_total``, and the ``outcome`` label of each."""

WAITED = "waited"
"""The observation of a first run's start, which the queue-wait histogram counts."""

Observation = tuple[str, str, float | None]
"""One counted event, as a worker process sends it to its pool: the outcome (or
:data:`WAITED`), the task's name, and seconds (how long the run took, or waited in
the queue; None for outcomes without a run)."""


def observation(event: str, task: Envelope, fields: dict[str, Any]) -> Observation | None:
    """What ``worq_tasks_total`` and the duration and queue-wait histograms count of an
    event; None for events they do not count (a failed run that will retry counts as
    failed, then as retried)."""
    if event == "task.started":
        wait = fields.get("queue_wait_s")
        return (WAITED, task.name, float(wait)) if isinstance(wait, int | float) else None
    outcome = OUTCOMES.get(event)
    if outcome is None:
        return None
    duration = fields.get("duration_s") if event in ("task.succeeded", "task.failed") else None
    return outcome, task.name, float(duration) if isinstance(duration, int | float) else None
