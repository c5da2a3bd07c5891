"""A pool SIGKILLed leaves its record behind only until it lapses."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from worq import get_broker
from worq.pool._presence import ANNOUNCE_TTL
from worq.testing import WAIT, eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

ROOT = Path(__file__).parent.parent.parent


def test_a_killed_pool_is_no_longer_listed_once_its_record_lapses(clean_redis_url: str) -> None:
    url = clean_redis_url
    pool = subprocess.Popen(
        [sys.executable, "-m", "worq", "worker", "tests.faults.fault_tasks:init", url,
         "--pool", "process", "--workers", "1", "--timeout", "0.2"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    broker = get_broker(url)
    try:
        eventually(lambda: [p.pid for p in broker.live_pools()], [pool.pid], timeout=WAIT)
        pool.send_signal(signal.SIGKILL)
        assert pool.wait(WAIT) == -signal.SIGKILL
        assert [p.pid for p in broker.live_pools()] == [pool.pid]  # it could not say it left
        eventually(broker.live_pools, [], timeout=ANNOUNCE_TTL + WAIT)
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait(WAIT)
        broker.close()
