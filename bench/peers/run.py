"""worq beside its peers: the same per-call workload, one Redis, one table.

Run with ``make bench-peers``: it creates the git-ignored venv
``bench/.peers-venv`` on first use (worq with its redis extra and the latest
RQ, Dramatiq, Huey, Celery, arq, SAQ, taskiq and taskiq-redis that pip can
install together) and runs this script with that venv's Python.

Every system, in turn, against one private redis-server (``bench/_servers.py``;
``FLUSHALL`` before each):

- its workers start as subprocesses (each system's own CLI, see the modules
  ``peer_*.py`` beside this file), 2 workers each; they are ready once the
  worker-side process tree has all its processes and a warm-up task has
  completed (conditions, never a fixed sleep), and are stopped with their
  graceful signal afterwards;
- throughput: ``WORQ_BENCH_TASKS`` (default 5,000) no-op tasks submitted one
  call at a time with the system's per-call enqueue API (no batch API), then
  each result waited on in order with its result API; tasks/s = N / elapsed;
- latency: 300 sequential submit-then-wait calls, p50 and p99;
- both phases run as one coroutine on one event loop (``asyncio.run``), as an
  async service would call: the asyncio systems' clients are awaited there,
  the sync systems' clients are called from it and block it;
- Redis commands per task: the growth of the summed ``calls`` of ``INFO
  commandstats`` over the throughput phase, over N (every command of every
  client: idle polls, heartbeats, commands run inside Lua scripts);
- CPU µs per task: the CPU time (user and system) spent over the throughput
  phase by the worker-side processes (those of the workers' sessions, with
  the children they reaped meanwhile), redis-server and this driver, over N:
  what the whole system costs per task, steadier than tasks/s on a shared
  virtual machine;
- peak worker-side RSS: every 0.1 s, the VmRSS of every process in the
  workers' sessions (each root starts a session: supervisors, worker
  processes, forked children) is summed; the peak over the run is kept.

One run, printed as one markdown table, then the machine, then how each
system's workers ran and every deviation from its defaults. A system that
cannot be imported or run keeps its row, which says why.

DEVIATIONS (the script prints them with the reasons, from each ``peer_*.py``):

- every system: per-task logging off (WARNING), since per-task INFO lines
  would measure logging, not the queue: worq ``--log-level warning``, RQ
  ``--logging_level WARNING``, Huey ``-q``, arq a ``--custom-log-dict`` at
  WARNING, taskiq ``--log-level WARNING``; Celery, Dramatiq and SAQ already
  log no task at their defaults;
- Dramatiq ``--threads 1`` (default 8), Huey ``-w 2 -k process`` (default 1
  thread), so that the 2 workers are 2 single-threaded processes; the asyncio
  peers (arq, SAQ, taskiq) keep their default per-process concurrency;
- Huey ``RedisHuey(notify_result=True)``: the option its 3.0 release notes
  give for low-latency result fetching on Redis;
- worq's asyncio pool runs as one process (one loop, ``--concurrency 100``),
  not two: one event loop is that pool's unit, as a process is the others';
  its row is driven through ``worq.aio``, awaited on the driver's loop as
  arq, SAQ and taskiq are, with an ``async def`` no-op task;
- arq's client calls ``job.result()`` again when it raises ResultNotFound
  for a job ``job.status()`` still finds: ``result()`` reads the result key,
  then the queue, not atomically, so a job finishing between the two reads
  is in neither (the row failed on that otherwise);
- SAQ's client waits with ``job.refresh(until_complete=1)`` repeated up to
  60 s, since one long refresh can miss a completion published between its
  fetch and its subscription (one call here sat out the full 60 s); its
  workers count as ready once both registered and the first sweep ran (a
  sweep aborted the warm-up task a starting worker had just dequeued).

Installed: ``saq`` without its ``redis`` extra, which caps redis-py below 8
and so makes pip fall back to a taskiq-redis that fails to import with the
newest taskiq; arq's newest releases cap redis-py below 6, which kombu[redis]
and taskiq-redis exclude, so pip installs an older arq (the version column
shows what ran).

Kept defaults that shape the numbers are printed as notes: RQ forks a
work-horse per job (its default Worker), arq's worker and ``job.result()``
poll every 0.5 s, taskiq's ``wait_result()`` every 0.2 s. taskiq's worker
processes do not exit on SIGTERM (killed after 30 s; its row says so).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, cast

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # bench/, for _servers and _procfs

from _common import URL_ENV, AsyncClient, Client, Peer  # noqa: E402
from _procfs import cpu_seconds  # noqa: E402
from _servers import redis_url  # noqa: E402

TASKS = int(os.environ.get("WORQ_BENCH_TASKS", "5000"))
LATENCY_CALLS = 300
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SAMPLE_EVERY = 0.1

SYSTEMS: list[tuple[str, str, str]] = [
    ("worq process pool", "peer_worq", "PROCESS_POOL"),
    ("worq thread pool", "peer_worq", "THREAD_POOL"),
    ("worq asyncio pool", "peer_worq", "ASYNCIO_POOL"),
    ("RQ", "peer_rq", "PEER"),
    ("Dramatiq", "peer_dramatiq", "PEER"),
    ("Huey", "peer_huey", "PEER"),
    ("Celery", "peer_celery", "PEER"),
    ("arq", "peer_arq", "PEER"),
    ("SAQ", "peer_saq", "PEER"),
    ("taskiq", "peer_taskiq", "PEER"),
]
"""Row label, module and attribute of each system's :class:`Peer`, in table order."""

BASELINE = "worq process pool"

ONLY = {name.strip() for name in os.environ.get("WORQ_BENCH_PEERS", "").split(",") if name.strip()}
"""WORQ_BENCH_PEERS: run only these rows (comma-separated labels) and the baseline."""


@dataclass
class Row:
    """One system's results, or why it has none."""

    name: str
    version: str = "-"
    tasks_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    commands_per_task: float | None = None
    cpu_us_per_task: float | None = None
    peak_rss_mib: float | None = None
    notes: list[str] = field(default_factory=list)
    peer: Peer | None = None


# --- worker-side processes ---------------------------------------------------------


def _sessions() -> dict[int, int]:
    """Every process's session id, by pid (Linux /proc)."""
    found: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:  # it exited meanwhile
            continue
        found[int(entry.name)] = int(fields[3])
    return found


def _rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB, 0 if it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_side(roots: list[int]) -> list[int]:
    """The processes of the roots' sessions (each root was started as a session leader)."""
    wanted = set(roots)
    return [pid for pid, session in _sessions().items() if session in wanted]


class RssSampler(threading.Thread):
    """Samples the summed VmRSS of the worker-side processes until stopped."""

    def __init__(self, roots: list[int]) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.roots = roots
        self.peak_kib = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            total = sum(_rss_kib(pid) for pid in worker_side(self.roots))
            self.peak_kib = max(self.peak_kib, total)
            self._stop_event.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@contextmanager
def workers(peer: Peer, log_dir: Path, row: Row) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The peer's worker processes, started, then stopped with its graceful signal.

    A stop that needed SIGKILL is noted in ``row``; the measurements stand.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    log_path = log_dir / "workers.log"
    processes: list[subprocess.Popen[bytes]] = []
    with open(log_path, "wb") as log:
        try:
            for command in peer.commands():
                process = subprocess.Popen(
                    command, cwd=HERE, env=env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
                processes.append(process)
            yield processes
        finally:
            problem = _stop(peer, processes)
            if problem:
                row.notes.append(problem)


def _stop(peer: Peer, processes: list[subprocess.Popen[bytes]]) -> str | None:
    """Stop gracefully; SIGKILL only what outlives the timeout, and say so."""
    roots = [process.pid for process in processes]
    for process in processes:
        if process.poll() is None:
            if peer.signal_group:
                os.killpg(process.pid, peer.stop_signal)
            else:
                process.send_signal(peer.stop_signal)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.wait(max(0.0, deadline - time.monotonic()))
    while worker_side(roots) and time.monotonic() < deadline:  # descendants finishing
        time.sleep(0.05)
    leftover = worker_side(roots)
    if leftover:
        for root in roots:
            with suppress(ProcessLookupError):
                os.killpg(root, signal.SIGKILL)
        for process in processes:
            process.wait()
        return (
            f"{len(leftover)} of its processes did not stop {STOP_TIMEOUT:.0f}s after "
            f"{peer.stop_signal.name}: killed"
        )
    return None


def _wait_ready(peer: Peer, processes: list[subprocess.Popen[bytes]], log: Path) -> None:
    """Until every expected worker-side process exists (a warm-up task follows)."""
    roots = [process.pid for process in processes]
    deadline = time.monotonic() + READY_TIMEOUT
    while len(worker_side(roots)) < peer.processes:
        exited = [process.args for process in processes if process.poll() is not None]
        if exited:
            raise RuntimeError(f"a worker exited at start: {_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {peer.processes} worker-side processes after 60s")
        time.sleep(0.05)  # polling a condition: no event says a process was forked
    while peer.ready is not None and not peer.ready():
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not report ready in 60s")
        time.sleep(0.05)


def _tail(log: Path, lines: int = 3) -> str:
    text = log.read_text(errors="replace").strip().splitlines()
    return " / ".join(text[-lines:]) if text else "(no output)"


# --- measuring ---------------------------------------------------------------------


def _commands(client: redis.Redis) -> int:
    """Commands the server has run so far (INFO commandstats, every command)."""
    stats: dict[str, dict[str, Any]] = client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


@dataclass
class Measured:
    """What the client-driven phases measured."""

    tasks_per_s: float
    commands_per_task: float
    cpu_us_per_task: float
    latencies_ms: list[float]


class _Awaited:
    """A sync :class:`Client` behind the async calls the driver makes (each call blocks
    the driver's loop, which runs nothing else)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def open(self) -> None:
        pass

    async def submit(self, value: int) -> Any:
        return self._client.submit(value)

    async def wait(self, handle: Any) -> Any:
        return self._client.wait(handle)

    async def close(self) -> None:
        self._client.close()


def _awaitable(client: Client | AsyncClient) -> AsyncClient:
    if inspect.iscoroutinefunction(client.submit):
        return cast(AsyncClient, client)
    return _Awaited(cast(Client, client))


async def _checked(client: AsyncClient, handle: Any, expected: int) -> None:
    value = await client.wait(handle)
    if value != expected:
        raise RuntimeError(f"a task returned {value!r}, not {expected!r}")


async def drive(client: AsyncClient, admin: redis.Redis, cpu: Callable[[], float]) -> Measured:
    """Both phases, run as one coroutine: the throughput phase, then the latency calls.

    ``cpu`` reads the CPU time the whole system has used so far.
    """
    await client.open()
    await _checked(client, await client.submit(-1), -1)  # warm-up: workers consuming
    before = _commands(admin)
    cpu_before = cpu()
    started = time.perf_counter()
    sent = [await client.submit(i) for i in range(TASKS)]
    for i, handle in enumerate(sent):
        await _checked(client, handle, i)
    elapsed = time.perf_counter() - started
    cpu_used = cpu() - cpu_before
    commands = (_commands(admin) - before - 1) / TASKS
    latencies = []
    for i in range(LATENCY_CALLS):
        began = time.perf_counter()
        await _checked(client, await client.submit(i), i)
        latencies.append((time.perf_counter() - began) * 1000)
    return Measured(TASKS / elapsed, commands, cpu_used / TASKS * 1e6, latencies)


async def _drive_and_close(
    client: AsyncClient, admin: redis.Redis, cpu: Callable[[], float]
) -> Measured:
    try:
        return await drive(client, admin, cpu)
    finally:
        await client.close()


def measure(row: Row, peer: Peer, admin: redis.Redis, url: str) -> None:
    """One system: start its workers, run both phases, stop them; fills ``row``."""
    admin.flushall()
    os.environ[URL_ENV] = url
    with tempfile.TemporaryDirectory(prefix=f"peer-{peer.name.split()[0]}-") as directory:
        log = Path(directory) / "workers.log"
        with workers(peer, Path(directory), row) as processes:
            roots = [process.pid for process in processes]
            sampler = RssSampler(roots)
            sampler.start()
            server = int(admin.info("server")["process_id"])

            def cpu() -> float:
                return cpu_seconds([*worker_side(roots), server, os.getpid()])

            try:
                _wait_ready(peer, processes, log)
                made = peer.client()
                try:
                    measured = asyncio.run(_drive_and_close(_awaitable(made), admin, cpu))
                finally:
                    row.notes.extend(getattr(made, "run_notes", list)())
            except Exception as exc:
                raise RuntimeError(f"{exc!r} (workers: {_tail(log)})") from exc
            finally:
                sampler.stop()
    row.tasks_per_s = measured.tasks_per_s
    row.commands_per_task = measured.commands_per_task
    row.cpu_us_per_task = measured.cpu_us_per_task
    row.p50_ms = statistics.median(measured.latencies_ms)
    row.p99_ms = statistics.quantiles(measured.latencies_ms, n=100)[98]
    row.peak_rss_mib = sampler.peak_kib / 1024


def _versions(peer: Peer) -> str:
    found = []
    for name in peer.distributions:
        try:
            found.append(version(name))
        except PackageNotFoundError:
            found.append("not installed")
    text = found[0]
    if peer.distributions[0] == "worq":
        text += f" ({_git_revision()})"
    extra = [f"{name} {v}" for name, v in zip(peer.distributions[1:], found[1:], strict=True)]
    return text + (f" ({', '.join(extra)})" if extra else "")


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "git revision unknown"
    return out.stdout.strip()


def run_system(label: str, module: str, attribute: str, admin: redis.Redis, url: str) -> Row:
    row = Row(label)
    os.environ[URL_ENV] = url  # the module builds its app at import time
    try:
        peer: Peer = getattr(importlib.import_module(module), attribute)
    except Exception as exc:  # a peer that cannot install or import keeps its row
        row.notes.append(f"cannot import {module}: {type(exc).__name__}: {exc}")
        return row
    row.peer = peer
    row.version = _versions(peer)
    print(f"bench-peers: {label} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        measure(row, peer, admin, url)
    except Exception as exc:
        row.tasks_per_s = row.p50_ms = row.p99_ms = row.commands_per_task = None
        row.cpu_us_per_task = None
        row.notes.append(f"failed: {type(exc).__name__}: {_one_line(str(exc))}")
    print(f"bench-peers: {label} done in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return row


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- report ------------------------------------------------------------------------


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator == 0:
        return "-"
    return f"{numerator / denominator:,.2f}x"


def table(rows: list[Row]) -> list[str]:
    base = next((row for row in rows if row.name == BASELINE), None)
    base_tps = base.tasks_per_s if base else None
    base_p50 = base.p50_ms if base else None
    lines = [
        "| system | version | tasks/s | p50 ms | p99 ms | Redis cmds/task | CPU µs/task "
        "| peak worker-side RSS MiB | worq process pool tasks/s ÷ this "
        "| this p50 ÷ worq process pool p50 | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        cells = [
            row.name,
            row.version,
            _cell(row.tasks_per_s, 0),
            _cell(row.p50_ms, 2),
            _cell(row.p99_ms, 2),
            _cell(row.commands_per_task, 1),
            _cell(row.cpu_us_per_task, 0),
            _cell(row.peak_rss_mib, 1),
            _ratio(base_tps, row.tasks_per_s),
            _ratio(row.p50_ms, base_p50),
            "; ".join(row.notes).replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def machine(admin: redis.Redis) -> list[str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    server: dict[str, Any] = admin.info("server")
    try:
        hiredis = version("hiredis")
    except PackageNotFoundError:
        hiredis = "not installed"
    return [
        f"- cores: {os.cpu_count()} ({model})",
        f"- Redis: redis-server {server['redis_version']}, private, no persistence",
        f"- Python: {platform.python_implementation()} {platform.python_version()} "
        f"on {platform.system()} {platform.release()}",
        f"- clients: redis-py {version('redis')}, hiredis {hiredis}",
        f"- workload: {TASKS:,} tasks per throughput phase, {LATENCY_CALLS} latency calls, "
        "2 workers, no-op task returning its argument, one run",
    ]


def deviations(rows: list[Row]) -> list[str]:
    lines: list[str] = []
    for row in rows:
        peer = row.peer
        if peer is None:
            lines.append(f"- **{row.name}**: not run ({'; '.join(row.notes)})")
            continue
        lines.append(f"- **{row.name}**: workers: {peer.workers}")
        lines.extend(f"  - deviation: {text}" for text in peer.deviations)
        lines.extend(f"  - note: {text}" for text in peer.notes)
    return lines


def main() -> int:
    started = time.monotonic()
    rows: list[Row] = []
    with redis_url() as url:
        admin = redis.Redis.from_url(url)
        try:
            for label, module, attribute in SYSTEMS:
                if ONLY and label not in ONLY and label != BASELINE:
                    continue
                rows.append(run_system(label, module, attribute, admin, url))
            info = machine(admin)
            admin.flushall()
        finally:
            admin.close()
    print(f"## worq and its peers: {TASKS:,} no-op tasks, 2 workers, one Redis\n")
    print("\n".join(table(rows)))
    print("\nMachine:\n")
    print("\n".join(info))
    print(f"- run time: {time.monotonic() - started:.0f} s for every system")
    print("\nDEVIATIONS (from each system's defaults, and why) and notes:\n")
    print("\n".join(deviations(rows)))
    print(
        "\nAll peers share one venv, so pip picks the newest versions that agree on redis-py; "
        "a peer whose newest release pins an older redis-py runs an older release (the "
        "version column says which ran)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
