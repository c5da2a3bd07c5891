"""Three pools fire one schedule: every scheduled second fires once, even as one dies.

Each pool is a ``worq worker`` process with its scheduler on (the default),
logging JSON events to a file. The test lets them race for a one-second
schedule for 15 seconds, SIGKILLs one of them in the middle, then reads every
``schedule.fired`` event all three logged: each second of the window fired
exactly once (no duplicate task id, no gap), and each fired task ran once.
"""

from __future__ import annotations

import collections
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
        first = last_fire_ms(url)
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

    fired = [record for log in logs for record in events(log, "schedule.fired")]
    times = collections.Counter(record["scheduled_time"] for record in fired)
    print(
        f"fired {len(fired)} times, by pool: {[len(events(log, 'schedule.fired')) for log in logs]}"
    )
    assert [t for t, count in times.items() if count > 1] == [], "a second fired twice"
    seconds = sorted(times)
    expected = [format_ms(ms) for ms in range(first, last_fire_ms(url) + 1, 1000)]
    assert seconds == expected, "a second in the window did not fire"
    assert len(expected) >= WINDOW
    assert any(t > format_ms(killed_at) for t in seconds), "nothing fired after the kill"

    # Every fired task runs once: drain what the stopped pools left queued.
    broker = schedule_tasks.init(url)
    drain = WorkerPool(broker, workers=2, scheduler=False)
    drain.start(timeout=0.05)
    try:
        task_ids = [record["task_id"] for record in fired]
        eventually(
            lambda: all(broker.taskqueue.get_status(i) is TaskStatus.COMPLETED for i in task_ids),
            True, timeout=WAIT,
        )  # fmt: skip
    finally:
        drain.stop()
        broker.close()
    client = redis.Redis.from_url(url)
    try:
        assert client.llen("beats") == len(fired)
    finally:
        client.close()
