"""Prometheus metrics of a pool, served over HTTP (the ``worq[metrics]`` extra).

A pool started with ``metrics_port=N`` (``worq worker --metrics-port N``)
serves ``/metrics`` from its own process. Runs are counted from worq's
events (``task.succeeded``, ``task.failed``, ``task.retrying``,
``task.expired``, ``task.lease_lost``), whatever the logging level, so
metrics and logs always agree. A process pool's workers run their tasks in
processes of their own: each worker passes what it observed to its pool
with the messages it sends anyway (the task it starts, the end of its
run), and the pool process counts it; one scrape of the pool covers every
worker, with no shared files (prometheus-client's multiprocess mode is not
used). Queue depths are read from the backend when scraped, at most once a
second however often.

Labels: ``queue``, ``task`` (its name, never its id), ``outcome``, ``state``,
``pool``: their number is bounded by the exposed tasks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from worq._events import logger
from worq._observations import OUTCOMES, WAITED, Observation, observation
from worq.core import Broker
from worq.exceptions import WorqError
from worq.models import Envelope

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "DEPTH_EVERY",
    "OUTCOMES",
    "WAITED",
    "WAIT_BUCKETS",
    "Observation",
    "PoolMetrics",
    "observation",
    "start_metrics",
    "stop_metrics",
]

WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
"""Queue waits range from milliseconds to a backlog's hours: prometheus-client's
default buckets stop at 10 s."""

DEPTH_EVERY = 1.0
"""Seconds a read of the queue's depths is reused for, however often it is scraped."""


class PoolMetrics:
    """One pool's metrics and the HTTP server that serves them.

    Args:
        broker: The pool's broker (its queue, and the backend read for depths).
        pool: The pool's name.
        workers: How many workers it has.
        running: How many tasks it runs now.
        port: The port of ``/metrics`` (0: any free one; see :attr:`port`).
        host: The address it listens on (loopback by default).

    Raises:
        WorqError: prometheus-client is not installed, or the port is taken.
    """

    def __init__(
        self,
        broker: Broker,
        pool: str,
        workers: int,
        running: Callable[[], int],
        port: int,
        host: str = "127.0.0.1",
    ) -> None:
        try:  # imported here: a pool without metrics, or a worker, never loads it
            import prometheus_client
        except ImportError:
            raise WorqError(
                "metrics_port needs prometheus-client: pip install 'worq[metrics]'"
            ) from None
        self._queue = broker.name
        self.registry: CollectorRegistry = prometheus_client.CollectorRegistry(auto_describe=True)
        self._tasks = prometheus_client.Counter(
            "worq_tasks", "Runs ended, by outcome.", ["queue", "task", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self._durations = prometheus_client.Histogram(
            "worq_task_duration_seconds", "How long runs took (succeeded or failed).",
            ["queue", "task"], registry=self.registry,
        )  # fmt: skip
        self._waits = prometheus_client.Histogram(
            "worq_task_queue_wait_seconds",
            "How long tasks waited in the queue, from due (sent, or delay over) to first run.",
            ["queue", "task"], registry=self.registry, buckets=WAIT_BUCKETS,
        )  # fmt: skip
        self.registry.register(_LiveCollector(broker, pool, workers, running))
        try:
            self._server, self._thread = prometheus_client.start_http_server(
                port, host, registry=self.registry
            )
        except OSError as exc:
            raise WorqError(
                f"cannot serve metrics of pool {pool!r} (queue {broker.name!r}) on "
                f"{host}:{port}: {exc.strerror or exc}; choose another --metrics-port"
            ) from None
        self.port: int = self._server.server_port
        """The port ``/metrics`` is served on."""
        logger.info("metrics.serving", queue=broker.name, pool=pool, host=host, port=self.port)

    def observe(self, event: str, task: Envelope, fields: dict[str, Any]) -> None:
        """An event observer (see ``worq._events``): count this queue's runs."""
        if task.queue != self._queue:
            return
        seen = observation(event, task, fields)
        if seen is not None:
            self.count([seen])

    def count(self, observations: Iterable[Observation]) -> None:
        """Count runs observed here or in a worker process."""
        for outcome, task, seconds in observations:
            if outcome == WAITED:
                if seconds is not None:
                    self._waits.labels(self._queue, task).observe(seconds)
                continue
            self._tasks.labels(self._queue, task, outcome).inc()
            if seconds is not None:
                self._durations.labels(self._queue, task).observe(seconds)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _LiveCollector:
    """What is read when scraped: runs in progress, workers, the queue's depths (a
    prometheus-client collector, by its ``collect`` and ``describe`` methods)."""

    def __init__(self, broker: Broker, pool: str, workers: int, running: Callable[[], int]) -> None:
        self._broker, self._pool, self._workers, self._running = broker, pool, workers, running
        self._lock = threading.Lock()
        self._depths: dict[str, int] = {}
        self._read_at = -float("inf")

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        queue = self._broker.name
        in_progress = GaugeMetricFamily(
            "worq_tasks_in_progress", "Tasks the pool runs now.", labels=["queue"]
        )
        in_progress.add_metric([queue], self._running())
        yield in_progress
        workers = GaugeMetricFamily("worq_workers", "The pool's workers.", labels=["queue", "pool"])
        workers.add_metric([queue, self._pool], self._workers)
        yield workers
        depth = GaugeMetricFamily(
            "worq_queue_depth", "Tasks in the queue by state, read from the backend.",
            labels=["queue", "state"],
        )  # fmt: skip
        for state, count in self._read_depths().items():
            depth.add_metric([queue, state], count)
        yield depth

    def _read_depths(self) -> dict[str, int]:
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= DEPTH_EVERY:
                try:
                    counts = self._broker.counts()
                    self._depths = {str(state): count for state, count in counts.items()}
                except WorqError as exc:  # the backend is down: the last read stands
                    logger.warning("metrics.depth_unavailable", queue=self._broker.name,
                                   error=str(exc))  # fmt: skip
                self._read_at = now
            return dict(self._depths)


def start_metrics(
    broker: Broker, pool: str, workers: int, running: Callable[[], int], port: int, host: str
) -> PoolMetrics:
    """A pool's metrics, served, counting the events of this process.

    Raises:
        WorqError: prometheus-client is missing, or the port is taken.
    """
    metrics = PoolMetrics(broker, pool, workers, running, port, host)
    logger.observers.append(metrics.observe)
    return metrics


def stop_metrics(metrics: PoolMetrics) -> None:
    """Stop counting and serving a pool's metrics."""
    if metrics.observe in logger.observers:
        logger.observers.remove(metrics.observe)
    metrics.close()
