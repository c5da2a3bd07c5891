"""What every pool runs beside its workers, started and closed as one.

A pool serves its Prometheus metrics (:mod:`worq.metrics`), fires its
broker's schedules (:mod:`worq.pool._scheduler`), keeps its record in the
backend (:mod:`worq.pool._presence`) and counts its runs per minute there
(:mod:`worq.stats`). They start together, before the pool's
workers, all or none: a metrics port in use or a schedule of a task the pool
does not run fails the pool's ``start()`` with nothing left running.
"""

from __future__ import annotations

from worq._events import logger
from worq._observations import Observation
from worq.core import Broker
from worq.metrics import PoolMetrics, start_metrics, stop_metrics
from worq.pool._presence import Activity, PoolPresence
from worq.pool._scheduler import Scheduler, start_scheduler
from worq.stats import PoolStats

__all__ = ["PoolServices"]


class PoolServices:
    """One pool's metrics, scheduler and presence.

    Args:
        broker: The pool's broker.
        kind: ``"thread"``, ``"process"`` or ``"asyncio"``.
        name: The pool's name.
        workers: Its workers (threads, processes, or the asyncio pool's concurrency).
        activity: Reads its finished count and running task ids.
        scheduler: Fire the broker's schedules.
        metrics_port: Serve metrics on this port; None: no metrics.
        metrics_host: The address the metrics are served on.
    """

    def __init__(
        self,
        broker: Broker,
        kind: str,
        name: str,
        workers: int,
        activity: Activity,
        *,
        scheduler: bool,
        metrics_port: int | None,
        metrics_host: str,
    ) -> None:
        self._broker, self._kind, self._name, self._workers = broker, kind, name, workers
        self._activity = activity
        self._schedules, self._port, self._host = scheduler, metrics_port, metrics_host
        self.metrics: PoolMetrics | None = None
        self.stats = PoolStats(broker.name)
        """The pool's per-minute counts, added to the queue's with each heartbeat."""
        self._scheduler: Scheduler | None = None
        self._presence: PoolPresence | None = None

    def start(self) -> None:
        """Start them all, or none.

        Raises:
            WorqError: The metrics port is taken, or prometheus-client missing.
            PoolError: A schedule sends a task the pool does not run.
        """
        try:
            if self._port is not None:
                self.metrics = start_metrics(
                    self._broker, self._name, self._workers,
                    lambda: len(self._activity()[1]), self._port, self._host,
                )  # fmt: skip
            self._scheduler = start_scheduler(
                self._broker, self._name, self._broker.runner.task_names(), self._schedules
            )
            logger.observers.append(self.stats.observe)
            self._presence = PoolPresence(
                self._broker, self._kind, self._name, self._workers, self._activity, self.stats
            )
            self._presence.start()
        except BaseException:
            self.close()
            raise

    def count(self, observed: list[Observation]) -> None:
        """Count what a process pool's worker observed (its metrics, its stats)."""
        if observed:
            self.stats.count(observed)
            if self.metrics is not None:
                self.metrics.count(observed)

    def close(self) -> None:
        """Stop them: the scheduler, then the record (removed), then the metrics."""
        if self._scheduler is not None:
            self._scheduler.close()
            self._scheduler = None
        if self.stats.observe in logger.observers:
            logger.observers.remove(self.stats.observe)
        if self._presence is not None:
            self._presence.close()
            self._presence = None
        if self.metrics is not None:
            stop_metrics(self.metrics)
            self.metrics = None
