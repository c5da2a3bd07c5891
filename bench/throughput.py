"""worq's own per-call throughput, latency, Redis commands per task and worker RSS.

The workload of the performance issue: N no-op tasks sent with ``q.noop(i)``
in a loop, then ``d.wait()`` on each in order, with two workers; latency is
the time of sequential submit-then-wait calls. Each configuration runs three
times and the median is printed. Redis commands per task come from ``INFO
commandstats`` (every command the server ran: clients, workers, idle waits,
heartbeats, reaping), so they include what a round-trip count misses.

The "asyncio pool, async client" rows run the same workload from async code:
``await aq.submit(anoop, i)`` through ``worq.aio``, then ``await`` on each,
with an asyncio pool (one event loop, concurrency 100) running ``async def
anoop``: in this process on memory://, in a ``worq worker`` process of its
own on Redis. Its RSS columns are the benchmark process's.

"CPU µs/task" is the CPU time (user and system) every process of the run
spent per task over the throughput phase: the benchmark's process (client,
and the pool but for its worker processes), the worker processes and
redis-server. It moves much less from run to run than the wall-clock
columns on a shared virtual machine, so it is the column to compare two
versions by.

The batched rows send the N tasks with ``q.map(noop, range(N))`` and collect
them with ``worq.wait_all``. The growth check then runs ``WORQ_BENCH_LONG``
(default 100,000) tasks through a Redis process pool (a ``worq worker``
process of its own, as deployed) in batches and prints the RSS of each of
its processes before and after, and the client's apart. Last, the Redis
memory each pending task takes: 50,000 sent with ``q.map``, never run.

Run with ``make bench``; ``WORQ_BENCH_TASKS`` changes N (default 5,000).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
import structlog
from _procfs import cpu_seconds  # bench/ is the script directory
from _servers import redis_url

import worq.aio
from worq import get_broker, wait_all
from worq.core import Broker
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool

TASKS = int(os.environ.get("WORQ_BENCH_TASKS", "5000"))
LONG_RUN = int(os.environ.get("WORQ_BENCH_LONG", "100000"))
PENDING = 50_000
"""Tasks sent, and never run, to measure Redis memory per pending task."""
LATENCY_CALLS = 300
RUNS = 3
WORKERS = 2
WAIT = 60.0


def noop(value: int) -> int:
    """The benchmark's task: returns its argument."""
    return value


async def anoop(value: int) -> int:
    """The benchmark's async task, for the asyncio pool: returns its argument."""
    return value


def init(url: str) -> Broker:
    """Process-pool worker init (module level, so spawned workers can import it)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger("warning"))
    broker = get_broker(url)
    broker.expose(noop)
    broker.expose(anoop)
    return broker


def _rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _run_pids(url: str, workers: list[int]) -> list[int]:
    """This process, the workers and, on Redis, the server: whose CPU a run costs."""
    pids = [os.getpid(), *workers]
    if not url.startswith("memory://"):
        client = redis.Redis.from_url(url)
        try:
            pids.append(int(client.info("server")["process_id"]))
        finally:
            client.close()
    return pids


def _commands(url: str) -> int:
    """Commands the server has run so far (INFO commandstats, every command)."""
    client = redis.Redis.from_url(url)
    try:
        stats: dict[str, dict[str, Any]] = client.info("commandstats")
        return sum(int(entry["calls"]) for entry in stats.values())
    finally:
        client.close()


@contextmanager
def running(kind: str, url: str) -> Iterator[list[int]]:
    """A started pool of ``kind`` on ``url``; yields its worker pids (none for threads)."""
    broker = init(url)
    if kind == "thread":
        thread_pool = ThreadPool(broker, workers=WORKERS)
        thread_pool.start(timeout=1)
        try:
            yield []
        finally:
            thread_pool.stop()
        return
    process_pool = ProcessPool(broker, init, workers=WORKERS)
    process_pool.start(timeout=1, handle_sigterm=False)
    try:
        deadline = time.monotonic() + WAIT
        while len(process_pool.worker_pids()) < WORKERS:  # no event says they are up
            if time.monotonic() > deadline:
                raise RuntimeError("process pool workers did not start")
            time.sleep(0.05)
        yield process_pool.worker_pids()
    finally:
        process_pool.stop()


def _wait(deferred: Any) -> None:
    if not deferred.wait(WAIT):
        raise RuntimeError(f"task {deferred.id} did not finish in {WAIT}s")


def measure(kind: str, url: str, count_commands: bool) -> dict[str, float]:
    """One run: throughput, latency percentiles, commands per task, RSS."""
    with running(kind, url) as pids:
        q = get_broker(url).queue()
        _wait(q.noop(0))  # warm: scripts loaded, workers idle
        idle_rss = [_rss_kib(pid) for pid in pids]
        commands = _commands(url) if count_commands else 0
        charged = _run_pids(url, pids)
        cpu = cpu_seconds(charged)
        started = time.perf_counter()
        sent = [q.noop(i) for i in range(TASKS)]
        for deferred in sent:
            _wait(deferred)
        elapsed = time.perf_counter() - started
        cpu_per_task = (cpu_seconds(charged) - cpu) / TASKS * 1e6
        per_task = (_commands(url) - commands) / TASKS if count_commands else float("nan")
        latencies = []
        for i in range(LATENCY_CALLS):
            began = time.perf_counter()
            _wait(q.noop(i))
            latencies.append((time.perf_counter() - began) * 1000)
        end_rss = [_rss_kib(pid) for pid in pids]
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "tasks/s": TASKS / elapsed,
        "p50 ms": statistics.median(latencies),
        "p99 ms": cuts[98],
        "cmds/task": per_task,
        "CPU µs/task": cpu_per_task,
        "worker idle RSS MiB": max(idle_rss, default=0) / 1024,
        "worker end RSS MiB": max(end_rss, default=0) / 1024,
        "pool process RSS MiB": _rss_kib(os.getpid()) / 1024,
    }


def measure_async(url: str, count_commands: bool) -> dict[str, float]:
    """One run of the per-call workload from async code: an asyncio pool (one
    process, concurrency 100) runs ``anoop``; the worq.aio client sends and awaits.

    On Redis the pool is a ``worq worker --pool asyncio`` process of its own,
    as it is deployed beside an async application; on memory:// it runs in
    this process, the only place a memory store is shared.
    """
    if url.startswith("memory://"):
        pool = AsyncioPool(init(url), concurrency=100)
        pool.start(timeout=1)
        try:
            return asyncio.run(_measure_async(url, count_commands, []))
        finally:
            pool.stop()
    worker = _worker_process(url, "--pool", "asyncio", "--concurrency", "100")
    try:
        return asyncio.run(_measure_async(url, count_commands, [worker.pid]))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(WAIT)


async def _measure_async(url: str, count_commands: bool, workers: list[int]) -> dict[str, float]:
    async with worq.aio.get_queue(url) as aq:
        await asyncio.wait_for(await aq.submit(anoop, 0), WAIT)
        commands = _commands(url) if count_commands else 0
        charged = _run_pids(url, workers)
        cpu = cpu_seconds(charged)
        started = time.perf_counter()
        sent = [await aq.submit(anoop, i) for i in range(TASKS)]
        for deferred in sent:
            await asyncio.wait_for(deferred, WAIT)
        elapsed = time.perf_counter() - started
        cpu_per_task = (cpu_seconds(charged) - cpu) / TASKS * 1e6
        per_task = (_commands(url) - commands) / TASKS if count_commands else float("nan")
        latencies = []
        for i in range(LATENCY_CALLS):
            began = time.perf_counter()
            await asyncio.wait_for(await aq.submit(anoop, i), WAIT)
            latencies.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(latencies, n=100)
    nan = float("nan")
    return {
        "tasks/s": TASKS / elapsed,
        "p50 ms": statistics.median(latencies),
        "p99 ms": cuts[98],
        "cmds/task": per_task,
        "CPU µs/task": cpu_per_task,
        "worker idle RSS MiB": nan,
        "worker end RSS MiB": nan,
        "pool process RSS MiB": _rss_kib(os.getpid()) / 1024,
    }


def measure_batched(kind: str, url: str, count_commands: bool) -> dict[str, float]:
    """One batched run: ``q.map`` the N tasks, then ``wait_all`` on them."""
    with running(kind, url) as pids:
        q = get_broker(url).queue()
        _wait(q.noop(0))
        commands = _commands(url) if count_commands else 0
        charged = _run_pids(url, pids)
        cpu = cpu_seconds(charged)
        started = time.perf_counter()
        waited = wait_all(q.map(noop, range(TASKS)), WAIT)
        elapsed = time.perf_counter() - started
        cpu_per_task = (cpu_seconds(charged) - cpu) / TASKS * 1e6
        if waited.not_done:
            raise RuntimeError(f"{len(waited.not_done)} batched tasks did not finish in {WAIT}s")
        per_task = (_commands(url) - commands) / TASKS if count_commands else float("nan")
    return {"tasks/s": TASKS / elapsed, "cmds/task": per_task, "CPU µs/task": cpu_per_task}


def memory_per_pending_task(url: str) -> tuple[float, float]:
    """Redis memory (``INFO memory``'s ``used_memory``) per pending no-op task, over
    PENDING tasks sent with ``q.map`` and never run: while the enqueue request
    records live, and once they lapsed (:data:`~worq.queue.redis.REPLAY_TTL`
    plus the connection's timeouts after sending).

    Each task leaves its hash and its id in the queue list; each request record
    is a key of its own, so the records are gone once the key count is down to
    one per task (and the queue list).
    """
    client = redis.Redis.from_url(url)
    try:
        client.flushall()
        before = int(client.info("memory")["used_memory"])
        q = get_broker(url).queue()
        q.map(noop, range(PENDING))
        live = int(client.info("memory")["used_memory"])
        deadline = time.monotonic() + WAIT
        while client.dbsize() > PENDING + 1:  # no event says the records lapsed
            if time.monotonic() > deadline:
                raise RuntimeError(f"request records still there after {WAIT}s")
            time.sleep(0.2)
        lapsed = int(client.info("memory")["used_memory"])
        client.flushall()
    finally:
        client.close()
    return (live - before) / PENDING, (lapsed - before) / PENDING


def long_run_rss(url: str) -> list[tuple[str, float, float]]:
    """RSS (MiB) of each process of a Redis process pool, and of the client sending to
    it, before and after LONG_RUN tasks.

    The pool is a ``worq worker --pool process`` of its own, as deployed, so that
    its process is measured apart from the client, which holds each batch's
    Deferreds and buffers.
    """
    worker = _worker_process(url, "--pool", "process", "--workers", str(WORKERS))
    try:
        q = get_broker(url).queue()
        _wait(q.noop(0))
        deadline = time.monotonic() + WAIT
        while len(children := _children(worker.pid)) < WORKERS:  # no event says they are up
            if time.monotonic() > deadline:
                raise RuntimeError("process pool workers did not start")
            time.sleep(0.05)
        processes = [("pool process", worker.pid)]
        processes += [(name, pid) for name, pid in children]
        processes += [("client (the benchmark)", os.getpid())]
        before = [_rss_kib(pid) / 1024 for _, pid in processes]
        for start in range(0, LONG_RUN, 10_000):
            batch = range(start, min(start + 10_000, LONG_RUN))
            if wait_all(q.map(noop, batch), WAIT).not_done:
                raise RuntimeError(f"tasks of the batch from {start} did not finish in {WAIT}s")
        after = [_rss_kib(pid) / 1024 for _, pid in processes]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(WAIT)
    return [(name, b, a) for (name, _), b, a in zip(processes, before, after, strict=True)]


def _worker_process(url: str, *options: str) -> subprocess.Popen[bytes]:
    """A ``worq worker throughput:init URL`` process with ``options``, logging warnings only."""
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([bench_dir, os.environ.get("PYTHONPATH", "")])
    )
    command = [sys.executable, "-m", "worq", "worker", "throughput:init", url, *options]
    return subprocess.Popen([*command, "--log-level", "warning"], env=env)


def _children(pid: int) -> list[tuple[str, int]]:
    """The child processes of ``pid``, named: its workers, and multiprocessing's
    resource tracker (started by the pool process, so one of its processes too)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except OSError:  # gone meanwhile
            continue
        if parent == pid:
            found.append((int(entry), b"resource_tracker" in command))
    workers = sorted(child for child, tracker in found if not tracker)
    trackers = [child for child, tracker in found if tracker]
    named = [(f"worker {n}", child) for n, child in enumerate(workers, 1)]
    return named + [("resource tracker", child) for child in trackers]


def median_of(runs: Callable[[], dict[str, float]]) -> dict[str, float]:
    results = [runs() for _ in range(RUNS)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger("warning"))
    rows: dict[str, dict[str, float]] = {}
    rows["memory + thread pool"] = median_of(lambda: measure("thread", "memory://bench", False))
    with redis_url() as url:
        rows["redis + thread pool"] = median_of(lambda: measure("thread", url, True))
        rows["redis + process pool"] = median_of(lambda: measure("process", url, True))
        rows["memory + asyncio pool, async client"] = median_of(
            lambda: measure_async("memory://bench-async", False)
        )
        rows["redis + asyncio pool (own process), async client"] = median_of(
            lambda: measure_async(url, True)
        )
        batched = {
            "memory + thread pool": median_of(
                lambda: measure_batched("thread", "memory://bench-batched", False)
            ),
            "redis + thread pool": median_of(lambda: measure_batched("thread", url, True)),
            "redis + process pool": median_of(lambda: measure_batched("process", url, True)),
        }
        growth = long_run_rss(url)
        memory_live, memory_lapsed = memory_per_pending_task(url)
    print(f"Per call: {TASKS} no-op tasks, {WORKERS} workers, median of {RUNS} runs")
    _table(rows)
    print(f"\nBatched (q.map, then wait_all): {TASKS} no-op tasks, median of {RUNS} runs")
    _table(batched)
    print(f"\nRSS over {LONG_RUN:,} tasks, Redis + process pool (batches of 10,000)")
    print("| process | start MiB | end MiB |")
    print("|---|---:|---:|")
    for name, start, end in growth:
        print(f"| {name} | {start:,.1f} | {end:,.1f} |")
    print(
        f"\nRedis memory per pending no-op task ({PENDING:,} sent with q.map, INFO memory): "
        f"{memory_live:,.1f} bytes while the request records live, "
        f"{memory_lapsed:,.1f} once they lapsed"
    )
    return 0


def _table(rows: dict[str, dict[str, float]]) -> None:
    columns = list(next(iter(rows.values())))
    print("| configuration | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name, row in rows.items():
        cells = ["-" if value != value else f"{value:,.2f}" for value in row.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
