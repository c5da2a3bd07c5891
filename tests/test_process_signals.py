"""A process pool in its own process: signals, orphans, and the manual's example files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from worq import get_queue
from worq.testing import WAIT, eventually

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
SUM_LINE = "0 + 1 + ... + 9 = 45"


def env() -> dict[str, str]:
    """The environment for child Pythons: worq's sources importable, quiet logs."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


@pytest.fixture
def pool_process(clean_redis_url: str) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """``python -m tests.pool_process URL`` running, with its worker pids."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.pool_process", clean_redis_url],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        words = process.stdout.readline().split()
        assert words[:1] == ["ready"], words
        yield process, [int(w) for w in words[1:]]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=WAIT)


def running(pid: int) -> bool:
    """True while ``pid`` is a live process (zombies count as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("second_signal", [None, signal.SIGINT])
def test_sigterm_lets_the_running_task_finish(
    pool_process: tuple[subprocess.Popen[str], list[int]],
    clean_redis_url: str,
    second_signal: signal.Signals | None,
) -> None:
    """SIGTERM stops taking tasks, the running one finishes, the pool exits 0."""
    process, workers = pool_process
    url = clean_redis_url
    res = get_queue(url).proc.wait_for_key(url, "go", WAIT)
    eventually(lambda: res.status, "processing")
    process.send_signal(signal.SIGTERM)
    if second_signal is not None:
        process.send_signal(second_signal)
    client = redis.Redis.from_url(url)
    client.rpush("go", "1")
    client.close()
    assert res.wait(WAIT), repr(res)
    assert res.value == "released"
    stdout, stderr = process.communicate(timeout=WAIT)
    assert process.returncode == 0, stderr
    assert stdout.strip() == "stopped"
    if second_signal is not None:
        assert "pool.already_stopping" in stderr
    eventually(lambda: [pid for pid in workers if running(pid)], [])


def test_workers_exit_when_their_pool_is_killed(
    pool_process: tuple[subprocess.Popen[str], list[int]],
) -> None:
    """SIGKILL the pool: its workers notice and exit by themselves within seconds."""
    process, workers = pool_process
    assert all(running(pid) for pid in workers)
    process.kill()
    process.wait(WAIT)
    eventually(lambda: [pid for pid in workers if running(pid)], [])


def assert_prints_the_sum(*args: str) -> None:
    """Run an example script; it must exit 0 having printed the manual's sum line."""
    done = subprocess.run(
        [sys.executable, *args], cwd=EXAMPLES, env=env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert SUM_LINE in done.stdout.splitlines()


def test_chapter_2_memory_example() -> None:
    """The manual's mem.py runs the chapter 1 tasks on memory:// in worker processes."""
    assert_prints_the_sum("mem.py")


def test_chapter_1_redis_example(clean_redis_url: str) -> None:
    """The manual's pool.py and main.py, in two processes, over Redis."""
    pool = subprocess.Popen(
        [sys.executable, "pool.py", clean_redis_url],
        cwd=EXAMPLES,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert_prints_the_sum("main.py", clean_redis_url)
    finally:
        pool.send_signal(signal.SIGTERM)
        _, stderr = pool.communicate(timeout=30)
    assert pool.returncode == 0, stderr
