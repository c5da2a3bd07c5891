"""Three pools fire one schedule: every scheduled second fires once, even as one dies.

Each pool is a ``worq worker`` process with its scheduler on (the default),
logging JSON events to a file. The test lets them race for a one-second
schedule for 15 seconds, SIGKILLs one of them in the middle, then reads every
``schedule.fired`` event all three logged: each second of the window fired
exactly once (no duplicate task id, no gap), and each fired task completed,
having run once (or expired, if the kill caught its run).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.faults import schedule_tasks
from worq import get_broker
from worq.const import TaskStatus
from worq.core import Broker
from worq.pool.thread import WorkerPool
from worq.schedules import format_ms
from worq.testing import WAIT, eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

ROOT = Path(__file__).parent.parent.parent
WINDOW = 15.0
"""Seconds the pools race for the schedule."""


def start_pool(url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "worq", "worker", "tests.faults.schedule_tasks:init", url,
             "--pool", "thread", "--workers", "2", "--timeout", "0.2", "--log-format", "json"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip


def events(log: Path, name: str) -> list[dict[str, Any]]:
    """The JSON events called ``name`` in a pool's log (a killed pool's last line may be cut)."""
    found = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == name:
            found.append(record)
    return found


def last_fire_ms(url: str) -> int:
    broker = get_broker(url)
    try:
        state = broker.schedule_states()[0].get("periodic.beat")
        return 0 if state is None else state.last_ms
    finally:
        broker.close()


def test_three_pools_fire_each_second_once_while_one_is_killed(
    clean_redis_url: str, tmp_path: Path
) -> None:
    url = clean_redis_url
    logs = [tmp_path / f"pool-{n}.jsonl" for n in range(3)]
    pools = [start_pool(url, log) for log in logs]
    try:
        eventually(lambda: all(events(log, "pool.started") for log in logs), True)
        eventually(lambda: last_fire_ms(url) > 0, True)
        first = last_fire_ms(url)  # the time registered as passed over, or one fired since
        eventually(lambda: last_fire_ms(url) >= first + WINDOW / 2 * 1000, True, timeout=WINDOW)
        pools[0].send_signal(signal.SIGKILL)
        killed_at = last_fire_ms(url)
        eventually(lambda: last_fire_ms(url) >= first + WINDOW * 1000, True, timeout=WINDOW)
        for pool in pools[1:]:
            pool.send_signal(signal.SIGTERM)
        assert [pool.wait(WAIT) for pool in pools] == [-signal.SIGKILL, 0, 0]
    finally:
        for pool in pools:
            if pool.poll() is None:
                pool.kill()
                pool.wait(WAIT)

    # Events: no second fired twice. The killed pool may have fired one last
    # second without living to log it: the backend says which seconds fired.
    fired = [record for log in logs for record in events(log, "schedule.fired")]
    times = collections.Counter(record["scheduled_time"] for record in fired)
    by_pool = [len(events(log, "schedule.fired")) for log in logs]
    print(f"fired events: {len(fired)}, by pool: {by_pool}")
    assert [t for t, count in times.items() if count > 1] == [], "a second fired twice"
    logged = sorted(_ms(t) for t in times)
    assert logged[0] <= first + 1000, "the first second after the pools started did not fire"
    window = list(range(logged[0], last_fire_ms(url) + 1, 1000))
    assert len(window) >= WINDOW
    assert window[-1] > killed_at, "nothing fired after the kill"
    unlogged = sorted(set(window) - set(logged))
    assert all(abs(t - killed_at) <= 2000 for t in unlogged), f"no event for {unlogged}"
    assert len(unlogged) <= 1, unlogged

    # The backend: every second of the window has its task, each completed
    # (drain what the stopped pools left queued first).
    task_ids = [f"schedule:periodic.beat:{format_ms(t)}" for t in window]
    broker = schedule_tasks.init(url)
    drain = WorkerPool(broker, workers=2, scheduler=False)
    drain.start(timeout=0.05)
    try:
        eventually(lambda: [i for i in task_ids if not _completed(broker, i)], [], timeout=WAIT)
    finally:
        drain.stop()
        broker.close()
    client = redis.Redis.from_url(url)
    try:
        # One run fewer when the pool was killed in the middle of one (that task
        # expired, its outcome stored); never one more.
        assert len(window) - 1 <= client.llen("beats") <= len(window)
    finally:
        client.close()


def _completed(broker: Broker, task_id: str) -> bool:
    return broker.taskqueue.get_status(task_id) is TaskStatus.COMPLETED


def _ms(iso: str) -> int:
    """A ``schedule.fired`` event's ``scheduled_time`` in milliseconds since the epoch."""
    return round(dt.datetime.fromisoformat(iso).timestamp() * 1000)
