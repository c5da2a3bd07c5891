"""Prometheus metrics of a pool, scraped over real HTTP and parsed by prometheus-client."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import process_tasks
from worq import Task, TaskFailure, get_broker
from worq.const import TaskStatus
from worq.core import Broker
from worq.exceptions import WorqError
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.testing import WAIT, eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample ``/metrics`` serves, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=WAIT) as page:
        text = page.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def flaky(marker: str) -> str:
    """Fails its first run (no marker file yet), succeeds on the next."""
    path = Path(marker)
    if not path.exists():
        path.touch()
        raise RuntimeError("first run fails")
    return "second run"


def square(x: int) -> int:
    return x * x


@pytest.fixture
def broker(url: str) -> Iterator[Broker]:
    made = get_broker(url, "measured")
    made.expose(square)
    made.expose(flaky)
    yield made
    made.close()


@pytest.mark.parametrize("kind", ["thread", "asyncio"])
def test_runs_are_counted_by_outcome_and_timed(broker: Broker, kind: str, tmp_path: Path) -> None:
    """Succeeded, failed and retried runs are counted per task, their durations
    observed; workers, runs in progress and the queue's depths are read when scraped."""
    make = ThreadPool if kind == "thread" else AsyncioPool
    pool = make(broker, 2, metrics_port=0)
    pool.start(timeout=0.05)
    try:
        port = pool.metrics.port if pool.metrics is not None else 0
        q = broker.queue()
        squares = [q.square(n) for n in range(5)]
        wrong = q.square("not a number")
        retried = Task(q.flaky, retries=1, retry_backoff=0)(str(tmp_path / "marker"))
        assert all(d.wait(WAIT) for d in [*squares, wrong, retried])
        with pytest.raises(TaskFailure, match="does not fit"):
            _ = wrong.value
        assert retried.value == "second run"
        # A waiter sees an outcome once it is stored; the pool counts the run as
        # ended a moment later, when its own bookkeeping after the store is done.
        eventually(lambda: value(scrape(port), "worq_tasks_in_progress", queue="measured"), 0.0)
        samples = scrape(port)
    finally:
        pool.stop()
    tasks = "worq_tasks_total"
    assert value(samples, tasks, queue="measured", task="square", outcome="succeeded") == 5
    assert value(samples, tasks, queue="measured", task="square", outcome="failed") == 1
    assert value(samples, tasks, queue="measured", task="flaky", outcome="failed") == 1
    assert value(samples, tasks, queue="measured", task="flaky", outcome="retried") == 1
    assert value(samples, tasks, queue="measured", task="flaky", outcome="succeeded") == 1
    durations = "worq_task_duration_seconds_count"
    assert value(samples, durations, queue="measured", task="square") == 6
    assert value(samples, durations, queue="measured", task="flaky") == 2
    waits = "worq_task_queue_wait_seconds"
    assert value(samples, waits + "_count", queue="measured", task="square") == 6
    assert value(samples, waits + "_count", queue="measured", task="flaky") == 1  # first runs
    assert 0 <= value(samples, waits + "_sum", queue="measured", task="square") < 6 * WAIT
    assert value(samples, "worq_workers", queue="measured", pool="worq-measured") == 2
    assert value(samples, "worq_tasks_in_progress", queue="measured") == 0
    for state in ("pending", "delayed", "enqueued", "processing"):
        assert (("worq_queue_depth", frozenset({("queue", "measured"), ("state", state)}))
                in samples)  # fmt: skip


def test_the_queue_depth_is_read_when_scraped_at_most_once_a_second(broker: Broker) -> None:
    reads = []
    counts = broker.counts

    def counted() -> dict[TaskStatus, int]:
        reads.append(1)
        return counts()

    broker.counts = counted  # type: ignore[method-assign]  # counts the reads
    pool = ThreadPool(broker, metrics_port=0)
    pool.start(timeout=0.05)
    try:
        port = pool.metrics.port if pool.metrics is not None else 0
        q = broker.queue(ignore_result=True)
        for n in range(3):
            q.square(n)
        first = scrape(port)
        second = scrape(port)
    finally:
        pool.stop()
    assert len(reads) == 1
    depth = ("worq_queue_depth", frozenset({("queue", "measured"), ("state", "enqueued")}))
    assert first[depth] == second[depth]


def test_a_process_pool_counts_its_workers_runs(clean_redis_url: str, tmp_path: Path) -> None:
    """One scrape of a process pool covers the runs of its worker processes (sent to it
    when they go idle, or every OBSERVED_EVERY seconds while busy) and those it settles
    itself (a worker that died)."""
    url = clean_redis_url
    pool = ProcessPool(process_tasks.init(url), process_tasks.init, workers=2, metrics_port=0)
    pool.start(timeout=0.1, handle_sigterm=False)
    try:
        port = pool.metrics.port if pool.metrics is not None else 0
        q = get_broker(url).queue()
        added = [q.proc.add([n, n]) for n in range(6)]
        wrong = q.proc.add(["x"])
        assert all(d.wait(WAIT) for d in [*added, wrong])
        tasks = "worq_tasks_total"

        def outcomes() -> tuple[float, ...]:
            samples = scrape(port)
            return tuple(
                value(samples, tasks, queue="default", task=task, outcome=outcome)
                for task, outcome in [("proc.add", "succeeded"), ("proc.add", "failed"),
                                      ("proc.die_once", "retried"),
                                      ("proc.die_once", "succeeded")]
            )  # fmt: skip

        # A worker sends what it counted to its pool before it waits for a task; one
        # killed while busy loses what it counted since (at most OBSERVED_EVERY seconds),
        # so the worker about to die has sent its counts first.
        eventually(outcomes, (6.0, 1.0, 0.0, 0.0))
        died = Task(q.proc.die_once, retries=1, retry_backoff=0)(str(tmp_path / "died"))
        assert died.wait(WAIT)
        assert died.value == "survived"
        eventually(outcomes, (6.0, 1.0, 1.0, 1.0))
        samples = scrape(port)
    finally:
        pool.stop()
    durations = "worq_task_duration_seconds_count"
    assert value(samples, durations, queue="default", task="proc.add") == 7
    waits = "worq_task_queue_wait_seconds_count"
    assert value(samples, waits, queue="default", task="proc.add") == 7
    assert value(samples, "worq_workers", queue="default", pool="worq-default") == 2


def test_a_metrics_port_in_use_is_a_clear_error_and_starts_nothing(broker: Broker) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        pool = ThreadPool(broker, metrics_port=port)
        with pytest.raises(WorqError, match=rf"127\.0\.0\.1:{port}.*choose another --metrics-port"):
            pool.start(timeout=0.05)
        assert broker.live_pools() == []
    finally:
        taken.close()


def test_a_failed_start_leaves_no_metrics_server_behind(broker: Broker) -> None:
    """A pool whose start fails after its metrics began (a schedule of a task it does
    not run) closes them again: the port is free, no observer is left."""
    from worq._events import logger
    from worq.exceptions import PoolError

    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    broker.schedule("reports.elsewhere", every=10)
    observers = list(logger.observers)
    pool = ThreadPool(broker, metrics_port=port)
    with pytest.raises(PoolError, match="does not run"):
        pool.start(timeout=0.05)
    assert logger.observers == observers
    again = socket.socket()
    try:
        again.bind(("127.0.0.1", port))  # the metrics server let go of it
    finally:
        again.close()
    assert broker.live_pools() == []
