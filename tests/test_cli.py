"""The ``worq`` command line, run as a subprocess the way an operator runs it.

Each test runs ``python -P -m worq`` in a directory holding a small ``tasks``
module: ``-P`` keeps Python from putting that directory on ``sys.path``, as
with the ``worq`` console script, so the CLI's own import of MODULE is tested.
Workers run the thread pool against Redis, where the test process can send
them tasks; the process pool is tested with that pool.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import worq
from worq import get_broker
from worq.testing import WAIT, RedisServer, eventually, free_port

SRC = str(Path(worq.__file__).resolve().parents[1])
"""The directory holding the worq package, for the subprocesses' PYTHONPATH."""

TASKS = '''
"""Tasks and init functions for the CLI tests."""

import redis

from worq import TaskSpace, get_broker

ts = TaskSpace("tasks")


@ts.task
def add(a: int, b: int) -> int:
    return a + b


@ts.task
def wait_for(url: str, key: str) -> str:
    """Block until the test pushes to Redis list ``key``."""
    client = redis.Redis.from_url(url)
    try:
        return "released" if client.blpop([key], timeout=10) else "timed out"
    finally:
        client.close()


@ts.task
def flaky(marker: str) -> str:
    """Raise on the first run (no marker file yet), succeed on the next."""
    import os

    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first run fails")
    return "second run"


def init(url):
    broker = get_broker(url)
    broker.expose(ts)
    return broker


def scheduled(url):
    broker = init(url)
    broker.schedule(add, every=0.2, args=(1, 2), name="adder")
    return broker


def scheduled_unexposed(url):
    broker = get_broker(url)
    broker.schedule("tasks.add", every=1, args=(1, 2))
    return broker


def raising(url):
    raise RuntimeError("no settings for this site")


def chatty(url):
    import logging
    logging.getLogger("app.settings").warning("loaded %d settings", 3)
    logging.getLogger("app.settings").debug("debug detail")
    return init(url)


def not_a_broker(url):
    return 42


async def async_init(url):
    return init(url)


NOT_CALLABLE = "tasks"
'''


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory with ``tasks.py`` and ``broken.py`` (whose import fails)."""
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "broken.py").write_text("import nosuchdependency\n")
    return tmp_path


def _env() -> dict[str, str]:
    paths = [SRC, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def run(workdir: Path, *args: str, answer: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``worq ARGS`` to completion with ``answer`` on stdin."""
    return subprocess.run(
        [sys.executable, "-P", "-m", "worq", *args],
        cwd=workdir, env=_env(), input=answer, capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip


class Worker:
    """A ``worq worker`` subprocess logging JSON, its stderr read line by line by a thread."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "worq", "worker", *args, "--log-format", "json"],
            cwd=workdir, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._incoming: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._incoming.put(line.rstrip("\n"))
        self._incoming.put(None)

    def expect(self, event: str, **fields: Any) -> dict[str, Any]:
        """Wait (up to WAIT seconds) for the JSON event ``event`` with ``fields``."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self._incoming.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise AssertionError(f"no {event} in {WAIT}s; stderr: {self.lines}") from None
            if line is None:
                raise AssertionError(f"worker exited before {event}; stderr: {self.lines}")
            self.lines.append(line)
            try:
                record: dict[str, Any] = json.loads(line)
            except ValueError:
                continue  # reported by the test's check of every line
            if record.get("event") == event and fields.items() <= record.items():
                return record

    def finish(self) -> int:
        """Wait for the worker to exit; returns its exit status, with every line read."""
        status = self.proc.wait(timeout=WAIT)
        self._reader.join(WAIT)
        while (line := self._incoming.get_nowait()) is not None:
            self.lines.append(line)
        return status

    def records(self) -> list[dict[str, Any]]:
        """Every stderr line as JSON; fails naming the first line that is not a JSON event."""
        records = []
        for line in self.lines:
            try:
                record = json.loads(line)
            except ValueError:
                pytest.fail(f"stderr line is not JSON: {line!r}")
            assert isinstance(record, dict), line
            assert "event" in record, line
            records.append(record)
        return records

    def kill(self) -> None:
        """Kill the worker if a failed test left it running; close its pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        self._reader.join(WAIT)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@pytest.fixture
def start_worker(workdir: Path) -> Iterator[Callable[..., Worker]]:
    """Starts ``worq worker ARGS`` subprocesses; kills any left running at teardown."""
    started: list[Worker] = []

    def start(*args: str) -> Worker:
        worker = Worker(workdir, *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def _enqueue_adds(url: str, count: int, name: str = "default") -> None:
    broker = get_broker(url, name)
    try:
        for n in range(count):
            broker.queue("tasks").add(n, n)
    finally:
        broker.close()


def _pending(url: str, name: str = "default") -> int:
    broker = get_broker(url, name)
    try:
        return broker.taskqueue.size()
    finally:
        broker.close()


def test_thread_worker_runs_tasks_until_sigterm(
    clean_redis_url: str, start_worker: Callable[..., Worker], workdir: Path
) -> None:
    """A thread worker runs tasks sent from another process, logs JSON and exits 0 on SIGTERM."""
    url = clean_redis_url
    worker = start_worker(
        "tasks:init", url, "--pool", "thread", "--workers", "2", "--timeout", "0.2"
    )
    worker.expect("pool.started", workers=2)
    broker = get_broker(url)
    try:
        results = [broker.queue("tasks").add(n, 10) for n in range(5)]
        assert [r.wait(WAIT) and r.value for r in results] == [10, 11, 12, 13, 14]
    finally:
        broker.close()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.finish() == 0
    records = worker.records()
    events = [record["event"] for record in records]
    assert events.count("task.succeeded") == 5
    assert events[-1] == "cli.worker_stopped"
    starting = records[events.index("cli.worker_starting")]
    assert starting["pool"] == "thread"
    assert starting["workers"] == 2
    assert starting["queue"] == "default"
    assert starting["module"] == "tasks"
    assert starting["module_file"] == str(workdir / "tasks.py")
    assert starting["tasks"] == ["tasks.add", "tasks.flaky", "tasks.wait_for"]
    assert all("level" in record and "timestamp" in record for record in records)


def _one_worker(pool: str) -> list[str]:
    """The options of a pool of one worker (one task at a time, for asyncio)."""
    size = "--concurrency" if pool == "asyncio" else "--workers"
    return ["--pool", pool, size, "1"]


@pytest.mark.parametrize("pool", ["thread", "process", "asyncio"])
def test_json_logs_include_standard_library_records(
    clean_redis_url: str, start_worker: Callable[..., Worker], pool: str
) -> None:
    """With --log-format json every stderr line is JSON, stdlib logging's lines included."""
    worker = start_worker(
        "tasks:chatty", clean_redis_url, *_one_worker(pool), "--timeout", "0.2",
        "--log-level", "debug",
    )  # fmt: skip
    worker.expect("pool.started")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.finish() == 0
    records = worker.records()  # fails on any line that is not a JSON event
    stdlib = [r for r in records if r.get("logger") == "app.settings"]
    assert [(r["event"], r["level"]) for r in stdlib[:2]] == [
        ("loaded 3 settings", "warning"),
        ("debug detail", "debug"),
    ]
    assert all("timestamp" in r for r in stdlib)


def test_process_worker_logs_json_from_every_process(
    clean_redis_url: str, start_worker: Callable[..., Worker]
) -> None:
    """A process-pool worker runs tasks in child processes; all of them log JSON lines."""
    url = clean_redis_url
    worker = start_worker(
        "tasks:init", url, "--pool", "process", "--workers", "2", "--timeout", "0.2",
        "--max-worker-tasks", "2",
    )  # fmt: skip
    worker.expect("pool.started", workers=2)
    broker = get_broker(url)
    try:
        results = [broker.queue("tasks").add(n, 1) for n in range(4)]
        assert [r.wait(WAIT) and r.value for r in results] == [1, 2, 3, 4]
    finally:
        broker.close()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.finish() == 0
    records = worker.records()
    runs = [r for r in records if r["event"] == "task.succeeded"]
    assert len(runs) == 4
    assert {r["pool"] for r in runs} == {"worq-default"}
    assert worker.proc.pid not in {r["pid"] for r in runs}
    assert [r["event"] for r in records][-1] == "cli.worker_stopped"


@pytest.mark.parametrize("pool", ["thread", "process", "asyncio"])
def test_retried_task_logs_its_attempt_in_every_pool(
    clean_redis_url: str, start_worker: Callable[..., Worker], pool: str, tmp_path: Path
) -> None:
    """The JSON lines of a retried task's runs carry attempt 1, then attempt 2.

    A regression test: the process pool's worker once logged every run as
    attempt 1, having lost the attempt the pool took the task with.
    """
    url = clean_redis_url
    worker = start_worker("tasks:init", url, *_one_worker(pool), "--timeout", "0.2")
    worker.expect("pool.started")
    broker = get_broker(url)
    try:
        flaky = broker.queue("tasks", retries=1, retry_backoff=0.01).flaky
        result = flaky(str(tmp_path / "marker"))
        assert result.wait(WAIT)
        assert result.value == "second run"
    finally:
        broker.close()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.finish() == 0
    mine = [r for r in worker.records() if r.get("task_id") == result.id]
    started = [r["attempt"] for r in mine if r["event"] == "task.started"]
    assert started == [1, 2]
    assert [r["attempt"] for r in mine if r["event"] == "task.failed"] == [1]
    assert [r["attempt"] for r in mine if r["event"] == "task.retrying"] == [1]
    assert [r["attempt"] for r in mine if r["event"] == "task.succeeded"] == [2]


@pytest.mark.parametrize("pool", ["thread", "asyncio"])
def test_second_signal_while_stopping_is_logged_and_shutdown_finishes(
    clean_redis_url: str, start_worker: Callable[..., Worker], pool: str
) -> None:
    """SIGINT during a SIGTERM shutdown is logged; the running task finishes and exit is 0."""
    url = clean_redis_url
    worker = start_worker("tasks:init", url, "--pool", pool, "--timeout", "0.2")
    worker.expect("pool.started")
    broker = get_broker(url)
    client = redis.Redis.from_url(url)
    try:
        result = broker.queue("tasks").wait_for(url, "release")
        worker.expect("task.started", task_name="tasks.wait_for")
        worker.proc.send_signal(signal.SIGTERM)
        worker.expect("pool.stop_requested", signal="SIGTERM")
        worker.proc.send_signal(signal.SIGINT)
        worker.expect("pool.already_stopping", signal="SIGINT")
        assert worker.proc.poll() is None, "the worker must wait for its running task"
        client.rpush("release", "go")
        assert worker.finish() == 0
        assert result.wait(WAIT)
        assert result.value == "released"
    finally:
        client.close()
        broker.close()
    events = [record["event"] for record in worker.records()]
    assert events.index("pool.already_stopping") < events.index("task.succeeded")
    assert events[-1] == "cli.worker_stopped"


DEAD = "redis://127.0.0.1:{port}/0"
"""A Redis URL nothing listens on (the port is filled in per test)."""

MALFORMED = "redis://:s3cret@localhost:notaport/0"


@pytest.mark.parametrize(
    ("args", "reasons"),
    [
        (["worker", "tasks", "memory://"], ["expected MODULE:INIT_FUNC", "'tasks'"]),
        (["worker", "nosuch:init", "memory://"], ["module 'nosuch'", "No module named 'nosuch'"]),
        (
            ["worker", "broken:init", "memory://"],
            ["module 'broken'", "No module named 'nosuchdependency'"],
        ),
        (["worker", "tasks:nope", "memory://"], ["'nope' from module 'tasks'"]),
        (["worker", "tasks:NOT_CALLABLE", "memory://"], ["not callable", "'tasks' (str)"]),
        (
            ["worker", "tasks:ts", "memory://"],
            [
                "tasks:ts is a TaskSpace ('tasks', 3 tasks), not an init function",
                "def init(url): broker = get_broker(url); broker.expose(ts); return broker",
            ],
        ),
        (
            ["worker", "tasks:raising", "memory://"],
            ["tasks:raising raised RuntimeError: no settings for this site"],
        ),
        (["worker", "tasks:not_a_broker", "memory://"], ["must return", "returned 42 (int)"]),
        (
            ["worker", "tasks:async_init", "memory://"],
            ["init function tasks:async_init is an async def function", "make it a plain def"],
        ),
        (["worker", "tasks:init", "memory://", "--queue", "other"], ["get_broker(url, 'other')"]),
        (["worker", "tasks:init", MALFORMED], ["malformed Redis URL", "redis://:***@localhost"]),
        (["info", MALFORMED], ["malformed Redis URL", "redis://:***@localhost"]),
        (["info", "ftp://example.com"], ["unsupported task queue URL 'ftp://example.com'"]),
        (["worker", "tasks:init", DEAD, "--pool", "thread"], ["cannot reach Redis at"]),
        (["info", DEAD], ["cannot reach Redis at"]),
        (["purge", DEAD, "--queue", "default", "--yes"], ["cannot reach Redis at"]),
        (["schedules", DEAD], ["cannot reach Redis at"]),
        (
            ["worker", "tasks:scheduled_unexposed", "memory://", "--pool", "thread"],
            ["schedule 'tasks.add' sends task 'tasks.add'", "expose the task"],
        ),
    ],
    ids=[
        "no-colon",
        "missing-module",
        "module-import-fails",
        "missing-function",
        "not-callable",
        "taskspace",
        "init-raises",
        "init-returns-no-broker",
        "init-is-async",
        "queue-mismatch",
        "malformed-url-worker",
        "malformed-url-info",
        "unsupported-scheme",
        "unreachable-worker",
        "unreachable-info",
        "unreachable-purge",
        "unreachable-schedules",
        "schedule-of-an-unexposed-task",
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    workdir: Path, args: list[str], reasons: list[str]
) -> None:
    """Bad input exits 2 with one stderr line giving the reason, never a traceback."""
    port = str(free_port())
    done = run(workdir, *(arg.replace("{port}", port) for arg in args))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("worq: error: ")
    for reason in reasons:
        assert reason in lines[0]
    assert "s3cret" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["worker", "tasks:init", "memory://", "--workers", "0"], "argument --workers"),
        (["worker", "tasks:init", "memory://", "--timeout", "-1"], "argument --timeout"),
        (
            ["worker", "tasks:init", "memory://", "--pool", "thread", "--max-worker-tasks", "3"],
            "--max-worker-tasks needs --pool process",
        ),
        (
            ["worker", "tasks:init", "memory://", "--pool", "thread", "--concurrency", "5"],
            "--concurrency needs --pool asyncio",
        ),
        (
            ["worker", "tasks:init", "memory://", "--pool", "asyncio", "--workers", "2"],
            "--pool asyncio runs one event loop: give --concurrency, not --workers",
        ),
        (["purge", "memory://"], "the following arguments are required: --queue"),
        (["info"], "the following arguments are required: URL"),
    ],
)
def test_usage_errors_exit_2(workdir: Path, args: list[str], reason: str) -> None:
    """argparse reports option errors with usage and exit status 2."""
    done = run(workdir, *args)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: worq ")
    assert reason in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr


def _table(text: str) -> dict[str, str]:
    """The rows of ``worq info``'s table, checking that its values are aligned."""
    lines = text.splitlines()
    columns = {len(line) - len(line.split(maxsplit=1)[1]) for line in lines}
    assert len(columns) == 1, f"values not aligned:\n{text}"
    return dict(line.split(maxsplit=1) for line in lines)


def test_info_on_memory(workdir: Path) -> None:
    """``info`` on memory:// prints a table, or JSON, with no ping (nothing to ping)."""
    done = run(workdir, "info", "memory://", "--queue", "default")
    assert done.returncode == 0, done.stderr
    assert _table(done.stdout) == {
        "queue": "default",
        "url": "memory://",
        "backend": "memory",
        "pending": "0",
        "states": "pending 0, delayed 0, enqueued 0, processing 0",
        "pools": "none",
    }
    done = run(workdir, "info", "memory://", "--queue", "jobs", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "queue": "jobs",
        "url": "memory://",
        "backend": "memory",
        "pending": 0,
        "states": {"pending": 0, "delayed": 0, "enqueued": 0, "processing": 0},
        "oldest_pending_s": None,
        "ping": None,
        "pools": [],
    }
    assert done.stderr == ""


def test_info_on_redis_counts_pending_tasks(workdir: Path, clean_redis_url: str) -> None:
    """``info`` on Redis shows the pending count of the named queue and the ping."""
    url = clean_redis_url
    _enqueue_adds(url, 3)
    done = run(workdir, "info", url, "--queue", "default")
    assert done.returncode == 0, done.stderr
    table = _table(done.stdout)
    assert 0 <= float(table.pop("oldest_pending_s")) < WAIT  # the first one sent, waiting
    assert table == {
        "queue": "default",
        "url": url,
        "backend": "redis",
        "pending": "3",
        "states": "pending 0, delayed 0, enqueued 3, processing 0",
        "ping": "yes",
        "pools": "none",
    }
    done = run(workdir, "info", url, "--queue", "default", "--json")
    assert json.loads(done.stdout)["pending"] == 3
    assert json.loads(done.stdout)["ping"] is True
    done = run(workdir, "info", url, "--queue", "other", "--json")
    assert json.loads(done.stdout)["pending"] == 0


def test_info_without_queue_lists_every_queue(workdir: Path, clean_redis_url: str) -> None:
    """``info URL`` lists each worq queue with its pending count: a typo'd name shows."""
    url = clean_redis_url
    _enqueue_adds(url, 3)
    _enqueue_adds(url, 1, "defualt")
    done = run(workdir, "info", url)
    assert done.returncode == 0, done.stderr
    header, queues = done.stdout.split("\n\n")
    assert _table(header + "\n") == {
        "url": url, "backend": "redis", "ping": "yes", "queues": "2",
    }  # fmt: skip
    assert [line.split() for line in queues.splitlines()] == [
        ["queue", "pending", "pools"], ["default", "3", "0"], ["defualt", "1", "0"],
    ]  # fmt: skip
    done = run(workdir, "info", url, "--json")
    assert json.loads(done.stdout) == {
        "url": url, "backend": "redis", "ping": True, "queues": {"default": 3, "defualt": 1},
        "pools": {"default": 0, "defualt": 0},
    }  # fmt: skip
    done = run(workdir, "info", "memory://")
    assert _table(done.stdout) == {"url": "memory://", "backend": "memory", "queues": "none"}


def test_password_is_never_shown(workdir: Path, tmp_path: Path) -> None:
    """On a password-protected Redis, ``info`` and its errors show the URL masked."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        try:
            client.config_set("requirepass", "s3cret")
        finally:
            client.close()
        done = run(workdir, "info", server.url.replace("redis://", "redis://:s3cret@"))
        assert done.returncode == 0, done.stderr
        masked = server.url.replace("redis://", "redis://:***@")
        assert _table(done.stdout)["url"] == masked
        done = run(workdir, "info", server.url.replace("redis://", "redis://:s3cretx@"))
        assert done.returncode == 2
        assert done.stderr.startswith(f"worq: error: cannot reach Redis at {masked} ")
        assert "s3cret" not in done.stderr
    finally:
        server.stop()


def test_purge_with_yes_discards_pending_tasks(workdir: Path, clean_redis_url: str) -> None:
    """``purge --yes`` discards the pending tasks without asking and says how many."""
    url = clean_redis_url
    _enqueue_adds(url, 3)
    done = run(workdir, "purge", url, "--queue", "default", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Discarded 3 pending tasks from queue 'default' at {url}.\n"
    assert done.stderr == ""
    assert _pending(url) == 0


@pytest.mark.parametrize("answer", ["n\n", "\n", "maybe\n", ""])
def test_purge_refused_discards_nothing(workdir: Path, clean_redis_url: str, answer: str) -> None:
    """Any answer but y/yes (or no answer at all) aborts the purge with exit status 1."""
    url = clean_redis_url
    _enqueue_adds(url, 3)
    done = run(workdir, "purge", url, "--queue", "default", answer=answer)
    assert done.returncode == 1
    assert f"Discard 3 pending tasks from queue 'default' at {url}? [y/N]" in done.stderr
    assert "nothing discarded" in done.stderr
    assert done.stdout == ""
    assert _pending(url) == 3


@pytest.mark.parametrize("answer", ["y\n", "YES\n"])
def test_purge_confirmed_discards(workdir: Path, clean_redis_url: str, answer: str) -> None:
    """Answering y or yes discards the pending tasks."""
    url = clean_redis_url
    _enqueue_adds(url, 3, name="jobs")
    done = run(workdir, "purge", url, "--queue", "jobs", answer=answer)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Discarded 3 pending tasks from queue 'jobs' at {url}.\n"
    assert _pending(url, "jobs") == 0


def test_purge_of_an_empty_queue_does_not_ask(workdir: Path) -> None:
    """Nothing pending: ``purge`` says so and exits 0 without a question."""
    done = run(workdir, "purge", "memory://", "--queue", "default")
    assert done.returncode == 0
    assert done.stdout == "No pending tasks in queue 'default' at memory://: nothing discarded.\n"
    assert done.stderr == ""


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_log_level_and_format(workdir: Path, clean_redis_url: str, log_format: str) -> None:
    """``--log-level info`` shows the purge event that the default (warning) hides."""
    url = clean_redis_url
    _enqueue_adds(url, 2)
    args = ["purge", url, "--queue", "default", "--yes", "--log-format", log_format]
    done = run(workdir, *args, "--log-level", "info")
    assert done.returncode == 0, done.stderr
    [line] = done.stderr.splitlines()
    if log_format == "json":
        record = json.loads(line)
        assert record["event"] == "queue.purged"
        assert record["level"] == "info"
        assert record["count"] == 2
    else:
        assert "queue.purged" in line
        assert "count=2" in line
    _enqueue_adds(url, 1)
    done = run(workdir, *args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_console_script(workdir: Path) -> None:
    """The installed ``worq`` script imports MODULE from the current directory."""
    script = Path(sys.executable).with_name("worq")
    done = subprocess.run(
        [str(script), "worker", "tasks:not_a_broker", "memory://"],
        cwd=workdir, env=_env(), capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert done.returncode == 2
    assert "returned 42 (int)" in done.stderr


@pytest.mark.parametrize("pool", ["thread", "process", "asyncio"])
def test_idle_worker_exits_promptly_on_sigterm(
    clean_redis_url: str, start_worker: Callable[..., Worker], pool: str
) -> None:
    """SIGTERM on an idle worker (default timeouts: 1 s thread and asyncio, 10 s process)
    exits at once."""
    size = "--concurrency" if pool == "asyncio" else "--workers"
    worker = start_worker("tasks:init", clean_redis_url, "--pool", pool, size, "2")
    worker.expect("pool.started")
    if pool == "process":
        worker.expect("worker.started")
        worker.expect("worker.started")
    signalled = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.finish() == 0
    took = time.monotonic() - signalled
    print(f"\n{pool} worker exited {took:.2f}s after SIGTERM")
    assert took < 3  # it used to wait out its blocking timeout (10-12 s for process)


@pytest.mark.parametrize("pool", ["thread", "process", "asyncio"])
def test_every_pool_fires_the_schedules_of_its_broker(
    workdir: Path, clean_redis_url: str, start_worker: Callable[..., Worker], pool: str
) -> None:
    """A worker fires its init function's schedules, logs schedule.fired, runs the tasks,
    and ``worq schedules`` lists them with their last and next fire times."""
    worker = start_worker("tasks:scheduled", clean_redis_url, *_one_worker(pool))
    fired = worker.expect("schedule.fired", schedule="adder")
    assert fired["task_id"] == f"schedule:adder:{fired['scheduled_time']}"
    assert fired["lateness_s"] >= 0
    ran = worker.expect("task.succeeded", task_name="tasks.add")  # a later fire's run
    assert ran["task_id"].startswith("schedule:adder:")
    listed = run(workdir, "schedules", clean_redis_url, "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["schedules"]
    assert (row["queue"], row["schedule"], row["task"], row["when"]) == (
        "default", "adder", "tasks.add", "every 0.2s",
    )  # fmt: skip
    assert dt.datetime.fromisoformat(row["last"]) < dt.datetime.fromisoformat(row["next"])
    assert row["last_task"].startswith("schedule:adder:")
    table = run(workdir, "schedules", clean_redis_url, "--queue", "default")
    header, line = table.stdout.splitlines()
    assert header.split() == ["queue", "schedule", "task", "when", "last", "next", "last_task"]
    assert line.split()[:4] == ["default", "adder", "tasks.add", "every"]
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.finish() == 0


def test_no_scheduler_leaves_the_schedules_alone(
    workdir: Path, clean_redis_url: str, start_worker: Callable[..., Worker]
) -> None:
    """With --no-scheduler a started worker has registered and fired nothing (a pool
    registers its schedules before it says it started)."""
    worker = start_worker("tasks:scheduled", clean_redis_url, "--pool", "thread", "--no-scheduler")
    worker.expect("pool.started")
    listed = run(workdir, "schedules", clean_redis_url)
    assert (listed.returncode, listed.stdout) == (0, f"no schedules at {clean_redis_url}\n")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.finish() == 0
    assert not [r for r in worker.records() if r["event"].startswith("schedule.")]


@pytest.mark.parametrize("pool", ["thread", "process", "asyncio"])
def test_info_lists_live_pools_with_their_running_tasks(
    workdir: Path, clean_redis_url: str, start_worker: Callable[..., Worker], pool: str
) -> None:
    """A running worker is listed by ``worq info`` (host, pid, kind, workers, the task it
    runs, tasks done); once it stopped it is gone at once."""
    url = clean_redis_url
    worker = start_worker("tasks:init", url, *_one_worker(pool))
    worker.expect("pool.started")
    broker = get_broker(url)
    try:
        done = broker.queue("tasks").add(1, 2)
        assert done.wait(WAIT)
        blocked = broker.queue("tasks").wait_for(url, "release-info")
        worker.expect("task.started", task_id=blocked.id)
        eventually(lambda: _pools(workdir, url)[0]["running"], [blocked.id], timeout=WAIT)
        (record,) = _pools(workdir, url)
        assert (record["kind"], record["pid"], record["queue"]) == (
            pool, worker.proc.pid, "default",
        )  # fmt: skip
        assert record["workers"] == 1
        assert record["tasks_done"] >= 1
        assert record["id"].startswith(f"{record['host']}:{worker.proc.pid}:")
        table = run(workdir, "info", url, "--queue", "default").stdout
        assert table.splitlines()[-1].split()[:4] == [record["id"], pool, record["host"],
                                                      str(worker.proc.pid)]  # fmt: skip
        listing = run(workdir, "info", url, "--json")
        assert json.loads(listing.stdout)["pools"] == {"default": 1}
        client = redis.Redis.from_url(url)
        try:
            client.rpush("release-info", 1)
        finally:
            client.close()
        assert blocked.wait(WAIT)
    finally:
        broker.close()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.finish() == 0
    assert _pools(workdir, url) == []


def _pools(workdir: Path, url: str) -> list[dict[str, Any]]:
    """The live pools ``worq info --json`` shows for the default queue."""
    done = run(workdir, "info", url, "--queue", "default", "--json")
    assert done.returncode == 0, done.stderr
    pools: list[dict[str, Any]] = json.loads(done.stdout)["pools"]
    return pools


def test_worker_serves_metrics_of_its_worker_processes(
    workdir: Path, clean_redis_url: str, start_worker: Callable[..., Worker]
) -> None:
    """``--metrics-port`` serves /metrics from the pool process; one scrape counts the
    runs of every worker process."""
    port = free_port()
    worker = start_worker("tasks:init", clean_redis_url, "--workers", "2",
                          "--metrics-port", str(port))  # fmt: skip
    serving = worker.expect("metrics.serving")
    assert (serving["host"], serving["port"]) == ("127.0.0.1", port)
    broker = get_broker(clean_redis_url)
    try:
        sums = [broker.queue("tasks").add(n, n) for n in range(4)]
        assert [s.wait(WAIT) and s.value for s in sums] == [0, 2, 4, 6]
    finally:
        broker.close()
    url = f"http://127.0.0.1:{port}/metrics"

    def succeeded() -> str:
        with urllib.request.urlopen(url, timeout=WAIT) as page:
            lines = page.read().decode().splitlines()
        return next((line for line in lines if line.startswith(
            'worq_tasks_total{outcome="succeeded",queue="default",task="tasks.add"}'
        )), "")  # fmt: skip

    eventually(succeeded, 'worq_tasks_total{outcome="succeeded",queue="default",'
                          'task="tasks.add"} 4.0')  # fmt: skip
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.finish() == 0


def test_a_metrics_port_in_use_is_one_line_and_exit_2(workdir: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        done = run(workdir, "worker", "tasks:init", "memory://", "--pool", "thread",
                   "--metrics-port", str(port), "--log-level", "error")  # fmt: skip
    finally:
        taken.close()
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("worq: error: cannot serve metrics of pool 'worq-default'")
    assert f"127.0.0.1:{port}" in line


def test_failed_lists_retries_and_purges_the_registry(workdir: Path, clean_redis_url: str) -> None:
    url = clean_redis_url
    broker = get_broker(url)
    sent = [broker.queue("tasks").add(n, n) for n in range(3)]
    for d in sent:
        assert broker.task_failed(d, f"gave up on <{d.id}>")
    listed = run(workdir, "failed", url)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["id", "task", "status", "attempts", "failed", "error"]
    assert [row.split()[:4] for row in rows] == [
        [d.id, "tasks.add", "expired", "0"] for d in reversed(sent)
    ]
    as_json = json.loads(run(workdir, "failed", url, "--limit", "1", "--json").stdout)
    (latest,) = as_json["failed"]
    assert (latest["id"], latest["error"]) == (sent[2].id, f"gave up on <{sent[2].id}>")
    assert latest["message"].startswith('{"v":3,"name":"tasks.add"}')

    partly = run(workdir, "retry", url, sent[0].id, "no-such-id")
    assert partly.returncode == 1
    assert f"retried {sent[0].id}" in partly.stdout
    assert "Retried 1 of 2 task(s)" in partly.stdout
    assert "not retried no-such-id: not in the failed-task registry" in partly.stderr
    assert run(workdir, "retry", url).returncode == 2  # neither ids nor --all
    every = run(workdir, "retry", url, "--all")
    assert every.returncode == 0, every.stderr
    assert "Retried 2 of 2 task(s)" in every.stdout
    assert _pending(url) == 3

    broker.task_failed(sent[2], "again")
    refused = run(workdir, "failed", url, "--purge", answer="n\n")
    assert refused.returncode == 1
    assert _failed_count(url) == 1
    purged = run(workdir, "failed", url, "--purge", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert "Discarded 1 failed task(s)" in purged.stdout
    assert "No failed tasks" in run(workdir, "failed", url).stdout


def _failed_count(url: str) -> int:
    broker = get_broker(url)
    try:
        return len(broker.failed_tasks())
    finally:
        broker.close()
