"""Retries, leases, time limits and delays: every task ends in exactly one outcome."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests import process_tasks
from tests.outcomes import outcome
from worq import Deferred, SerializationError, Task, TaskExpired, TaskFailure, get_broker, get_queue
from worq.const import TaskStatus
from worq.models import TaskOptions
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool
from worq.testing import WAIT, eventually, thread_worker


def test_retry_delay_is_exponential_jittered_and_capped() -> None:
    """Each retry waits between half and all of backoff * 2**(n-1), never past the cap."""
    options = TaskOptions(retry_backoff=1, retry_backoff_max=5)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (10, 5)]:
        delays = [options.retry_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempt, delays)
        assert len(set(delays)) > 1


def test_exceptions_are_retried_until_success(url: str) -> None:
    """A task raising twice then succeeding, with retries=2, succeeds on run 3."""
    runs: list[int] = []

    def flaky() -> str:
        runs.append(1)
        if len(runs) < 3:
            raise ConnectionError(f"try {len(runs)}")
        return "third time lucky"

    broker = get_broker(url)
    broker.expose(flaky)
    with capture_logs() as logs, thread_worker(broker, timeout=0.1):
        res = Task(get_queue(url).flaky, retries=2, retry_backoff=0.01)()
        assert outcome(res) == "third time lucky"
    retrying = [e for e in logs if e["event"] == "task.retrying"]
    assert [(e["attempt"], e["error"]) for e in retrying] == [
        (1, "ConnectionError: try 1"),
        (2, "ConnectionError: try 2"),
    ]
    assert all(0.005 <= e["delay_s"] <= 0.02 for e in retrying)


def test_last_failure_reaches_the_waiter(url: str) -> None:
    """With retries exhausted, the waiter gets the last run's failure."""
    runs: list[int] = []

    def broken() -> None:
        runs.append(1)
        raise ValueError(f"run {len(runs)}")

    broker = get_broker(url)
    broker.expose(broken)
    with thread_worker(broker, timeout=0.1):
        res = Task(get_queue(url).broken, retries=1, retry_backoff=0)()
        failure = outcome(res)
    assert failure == TaskFailure("broken", "default", res.id, "ValueError: run 2")
    assert len(runs) == 2


def test_bad_arguments_are_not_retried(url: str) -> None:
    """Failures another run cannot fix (unknown task, wrong arguments) are final at once."""
    broker = get_broker(url)
    broker.expose(len)
    with capture_logs() as logs, thread_worker(broker, timeout=0.1):
        q = get_queue(url, retries=3)
        assert outcome(q.nope()).error == "no such task"
        assert "TypeError" in outcome(q.len(1, 2)).error
    assert not [e for e in logs if e["event"] == "task.retrying"]


def vanish(url: str) -> str:
    """Take the next task as a worker that then vanishes; return its id."""
    lost = get_broker(url, initial_result_timeout=0.2).next_task(timeout=5)
    assert lost is not None
    return lost.id


def test_lapsed_lease_without_retries_expires_for_the_waiter(url: str) -> None:
    """A task whose worker vanished ends as TaskExpired for the client waiting on it."""
    res = get_queue(url).echo("lost")
    vanish(url)
    eventually(lambda: res.status, TaskStatus.LAPSED)
    failure = outcome(res)
    assert isinstance(failure, TaskExpired)
    assert failure.error.startswith("its lease lapsed")


def test_lapsed_lease_with_retries_runs_again_on_a_live_pool(url: str) -> None:
    """A live pool's reaper re-queues a task whose worker vanished; it then succeeds."""
    res = Task(get_queue(url).echo, retries=1, retry_backoff=0)("again")
    assert vanish(url) == res.id
    broker = get_broker(url, initial_result_timeout=0.2)
    broker.expose(lambda value: value, replace=True)
    broker.tasks["echo"] = broker.tasks.pop("<lambda>")
    with capture_logs() as logs:
        pool = WorkerPool(broker)
        pool.start(timeout=0.1)
        try:
            assert outcome(res) == "again"
        finally:
            pool.stop()
    assert any(e["event"] == "task.retrying" and e["task_id"] == res.id for e in logs)


def test_late_result_of_a_reclaimed_run_is_dropped(url: str) -> None:
    """A worker finishing after its lease was reclaimed cannot overwrite the outcome."""
    res = get_queue(url).echo("slow")
    slow = get_broker(url, initial_result_timeout=0.2)
    task = slow.next_task(timeout=5)
    assert task is not None
    eventually(lambda: res.status, TaskStatus.LAPSED)
    assert get_broker(url).reap() == 1
    with capture_logs() as logs:
        slow.set_result(task, "too late")
    assert isinstance(outcome(res), TaskExpired)
    assert [e["event"] for e in logs] == ["task.lease_lost"]


def test_thread_pool_fails_the_waiter_at_the_time_limit(url: str) -> None:
    """Past time_limit the waiter gets a TaskFailure; the thread's late outcome is dropped."""
    release = threading.Event()

    def stuck() -> str:
        release.wait(WAIT)
        return "finally"

    broker = get_broker(url)
    broker.expose(stuck)
    with capture_logs() as logs, thread_worker(broker, timeout=0.1):
        res = Task(get_queue(url).stuck, time_limit=0.2)()
        failure = outcome(res)
        release.set()
        eventually(lambda: any(e["event"] == "task.lease_lost" for e in logs), True)
    assert failure.error.startswith("time limit of 0.2s exceeded")


def test_process_pool_kills_a_worker_past_its_time_limit(clean_redis_url: str) -> None:
    """Past time_limit the worker process is killed, the task fails, a new worker serves."""
    url = clean_redis_url
    pool = ProcessPool(process_tasks.init(url), process_tasks.init, workers=1)
    pool.start(timeout=0.1, handle_sigterm=False)
    try:
        q = get_queue(url)
        first = outcome(q.proc.pid())
        res = Task(q.proc.hang, time_limit=0.5, retries=1, retry_backoff=0)(url, "never")
        failure = outcome(res)
        assert failure.error.startswith("time limit of 0.5s exceeded: worker process")
        after = outcome(q.proc.pid())
        assert after != first
    finally:
        pool.stop()


def test_worker_death_is_retried(url: str, tmp_path: Path) -> None:
    """A worker dying in a task with retries left runs it again on a fresh worker."""
    pool = ProcessPool(process_tasks.init(url), process_tasks.init, workers=1)
    pool.start(timeout=0.1, handle_sigterm=False)
    try:
        q = get_queue(url)
        res = Task(q.proc.die_once, retries=1, retry_backoff=0)(str(tmp_path / "marker"))
        assert outcome(res) == "survived"
    finally:
        pool.stop()


def test_delayed_tasks_run_when_due(url: str) -> None:
    """delay= and eta= hold a task back; it runs once due."""
    broker = get_broker(url)
    broker.expose(lambda: datetime.now(UTC), replace=True)
    broker.tasks["now"] = broker.tasks.pop("<lambda>")
    with thread_worker(broker, timeout=0.1):
        q = get_queue(url)
        sent = datetime.now(UTC)
        by_delay = Task(q.now, delay=0.3)()
        by_eta = Task(q.now, eta=sent + timedelta(seconds=0.3))()
        assert by_delay.status == TaskStatus.DELAYED
        for res in (by_delay, by_eta):
            ran = outcome(res)
            assert ran - sent >= timedelta(seconds=0.25), ran - sent


def test_delay_validation(url: str) -> None:
    """Bad delay/eta combinations are refused when the Task is made or sent."""
    q = get_broker(url).queue()
    with pytest.raises(ValueError, match="either a delay or an eta"):
        Task(q.f, delay=1, eta=datetime.now(UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        Task(q.f, eta=datetime.now())
    with pytest.raises(ValueError, match="delay must be a finite number"):
        Task(q.f, delay="soon")  # type: ignore[call-overload]  # the mistake under test
    with pytest.raises(ValueError, match="cannot be combined with Deferred arguments"):
        Task(q.f, delay=1)(q.g())
    with pytest.raises(ValueError, match="retries must be an int >= 0"):
        Task(q.f, retries=-1)
    with pytest.raises(ValueError, match="time_limit must be a finite number of seconds > 0"):
        Task(q.f, time_limit=0)


def test_oversized_message_is_refused_at_the_call_site(url: str) -> None:
    """A message over max_message_size is refused, naming task, size and limit."""
    q = get_broker(url, max_message_size=1000).queue()
    with pytest.raises(
        SerializationError, match=r"its message is \d+ bytes, over max_message_size=1000"
    ):
        q.echo("x" * 2000)
    assert len(q) == 0
    with pytest.raises(ValueError, match="max_message_size must be a positive number of bytes"):
        get_broker(url, max_message_size=0)


def test_message_of_an_unknown_format_version_is_rejected(url: str) -> None:
    """A message from a future worq (another format version) fails with the reason."""
    broker = get_broker(url)
    with thread_worker(broker, timeout=0.1):
        broker.taskqueue.enqueue_task(
            "future", b'{"v": 99, "id": "future"}', keep_result=True, track=True
        )
        failure = outcome(Deferred(broker, "future", "?"))
    assert "unsupported version 99" in failure.error


def test_stale_run_cannot_answer_a_resent_task(url: str) -> None:
    """A run whose lease lapsed cannot finish a later task sent under the same id."""
    broker = get_broker(url, initial_result_timeout=0.05)
    q = get_queue(url)
    first = Task(q.work, id="job")("v1")
    stale = broker.next_task(WAIT)
    assert stale is not None
    assert stale.lease != ""
    assert first.wait(WAIT)  # the lease lapsed: the waiter settles it
    assert isinstance(first.outcome(), TaskExpired)
    second = Task(q.work, id="job")("v2")
    fresh = broker.next_task(WAIT)
    assert fresh is not None
    assert fresh.args == ("v2",)
    assert fresh.lease != stale.lease
    with capture_logs() as logs:
        broker.set_result(stale, "old run's value")
    assert [e["event"] for e in logs] == ["task.lease_lost"]
    broker.heartbeat(fresh)
    broker.set_result(fresh, "fresh value")
    assert second.wait(WAIT)
    assert second.value == "fresh value"
