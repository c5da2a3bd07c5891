"""The ``worq`` command line: run a worker, inspect a queue, purge a queue.

``worq worker MODULE:INIT_FUNC URL`` follows the WorQ 1.1 contract: the init
function gets the URL and returns the :class:`~worq.core.Broker` whose tasks
the pool runs, so the same function can build the broker in each worker
process. Bad input (an init function that cannot be imported or misbehaves, a
malformed URL, an unreachable backend) is reported as one line on stderr with
exit status 2, never as a traceback: the person reading it is operating a
worker, not debugging worq.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import ipaddress
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from worq._backends import get_broker
from worq._checks import is_coroutine_function
from worq._events import logger
from worq._logging import LOG_FORMATS, LOG_LEVELS, configure_logging
from worq._urls import mask_url
from worq.core import Broker
from worq.exceptions import PoolError, WorqError
from worq.models import Envelope
from worq.pool._scheduler import check_schedules
from worq.pool._signals import run_until_stop_signal
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.process import WorkerPool as ProcessPool
from worq.pool.thread import WorkerPool as ThreadPool
from worq.runner import waited
from worq.schedules import format_ms
from worq.task import TaskSpace
from worq.typing import RetryResult, ScheduleState

__all__ = ["main"]

POOL_TIMEOUTS = {"thread": 1.0, "process": 10.0, "asyncio": 1.0}
"""Default ``--timeout`` per pool: the pools' own ``start()`` defaults."""


class CliError(Exception):
    """Bad input or an unusable backend: one line on stderr and exit status 2."""


def main(argv: list[str] | None = None) -> int:
    """Run the ``worq`` command line; returns the exit status.

    Args:
        argv: The arguments after the program name; None reads ``sys.argv``.
    """
    args = build_parser().parse_args(argv)
    if args.command == "worker" and args.max_worker_tasks and args.pool != "process":
        args.parser.error("--max-worker-tasks needs --pool process")
    if args.command == "worker" and args.concurrency and args.pool != "asyncio":
        args.parser.error("--concurrency needs --pool asyncio (use --workers for the others)")
    if args.command == "worker" and args.workers and args.pool == "asyncio":
        args.parser.error("--pool asyncio runs one event loop: give --concurrency, not --workers")
    try:
        configure_logging(args.log_format, args.log_level or args.default_level)
        status: int = args.run(args)
    except CliError as exc:
        print(f"worq: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("worq: interrupted", file=sys.stderr)
        return 130
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (argparse reports usage errors, exit 2)."""
    logging_options = argparse.ArgumentParser(add_help=False)
    logging_options.add_argument(
        "--log-format", choices=LOG_FORMATS, default="console",
        help="how events are written to stderr (default: console)",
    )  # fmt: skip
    logging_options.add_argument(
        "--log-level", choices=list(LOG_LEVELS),
        help="lowest level logged (default: info for worker, warning otherwise)",
    )  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="worq", description="Run worq workers and inspect worq queues."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser(
        "worker", parents=[logging_options], help="run a worker pool until SIGTERM/SIGINT",
        description="Call INIT_FUNC(URL), which must return a worq Broker with its tasks "
        "exposed, and run its tasks in a pool until SIGTERM or SIGINT.",
    )  # fmt: skip
    worker.add_argument("init", metavar="MODULE:INIT_FUNC", help="e.g. tasks:init")
    worker.add_argument("url", metavar="URL", help="task queue URL, passed to INIT_FUNC")
    worker.add_argument("--queue", metavar="NAME", help="check that the broker serves this queue")
    worker.add_argument(
        "--pool", choices=("process", "thread", "asyncio"), default="process",
        help="run tasks in worker processes (default), in threads of this process, or on "
        "one event loop of this process (async def tasks; sync ones in threads)",
    )  # fmt: skip
    worker.add_argument(
        "--workers", type=_positive_int, metavar="N",
        help="worker processes or threads (default: CPU count for process, 1 for thread)",
    )  # fmt: skip
    worker.add_argument(
        "--concurrency", type=_positive_int, metavar="N",
        help="most tasks running at once (asyncio pool only; default 100)",
    )  # fmt: skip
    worker.add_argument(
        "--max-worker-tasks", type=_positive_int, metavar="N",
        help="replace a worker process after N tasks (process pool only)",
    )  # fmt: skip
    worker.add_argument(
        "--timeout", type=_positive_float, metavar="S",
        help="seconds each blocking wait for a task lasts (a stop signal ends it at once) "
        "(default: 10 for process, 1 for thread)",
    )  # fmt: skip
    worker.add_argument(
        "--no-scheduler", action="store_true",
        help="do not fire the broker's schedules (by default every pool fires them; "
        "each scheduled time fires once however many pools run)",
    )  # fmt: skip
    worker.add_argument(
        "--metrics-port", type=_port, metavar="N",
        help="serve Prometheus metrics at http://HOST:N/metrics (needs worq[metrics])",
    )  # fmt: skip
    worker.add_argument(
        "--metrics-host", default="127.0.0.1", metavar="HOST",
        help="the address the metrics are served on (default: 127.0.0.1)",
    )  # fmt: skip
    worker.set_defaults(run=_worker, default_level="info", parser=worker)

    inspecting = argparse.ArgumentParser(add_help=False, parents=[logging_options])
    inspecting.add_argument("url", metavar="URL")
    inspecting.add_argument(
        "--queue", metavar="NAME", help="this queue only (default: every queue at URL)"
    )
    inspecting.add_argument("--json", action="store_true", help="print one JSON object")
    info = commands.add_parser(
        "info", parents=[inspecting],
        help="show the queues at a URL (or one queue) with their pending tasks",
    )  # fmt: skip
    info.set_defaults(run=_info, default_level="warning")
    schedules = commands.add_parser(
        "schedules", parents=[inspecting],
        help="list the schedules the pools registered, with their last and next fire times",
    )  # fmt: skip
    schedules.set_defaults(run=_schedules, default_level="warning")

    failed = commands.add_parser(
        "failed", parents=[logging_options],
        help="list a queue's failed-task registry (tasks that ended failed or expired)",
    )  # fmt: skip
    failed.add_argument("url", metavar="URL")
    failed.add_argument("--queue", metavar="NAME", default="default", help="(default: default)")
    failed.add_argument(
        "--limit", metavar="N", type=_positive_int, default=100,
        help="the latest N failures (default: 100)",
    )  # fmt: skip
    failed.add_argument("--json", action="store_true", help="print one JSON object")
    failed.add_argument("--purge", action="store_true", help="empty the registry instead")
    failed.add_argument("--yes", action="store_true", help="do not ask before --purge")
    failed.set_defaults(run=_failed, default_level="warning")

    retry = commands.add_parser(
        "retry", parents=[logging_options],
        help="send failed tasks of the registry again (their dependants along)",
    )  # fmt: skip
    retry.add_argument("url", metavar="URL")
    retry.add_argument("task_ids", metavar="TASK_ID", nargs="*")
    retry.add_argument("--queue", metavar="NAME", default="default", help="(default: default)")
    retry.add_argument("--all", action="store_true", help="every task of the registry")
    retry.set_defaults(run=_retry, default_level="warning", parser=retry)

    dashboard = commands.add_parser(
        "dashboard", parents=[logging_options],
        help="serve a live web page of the queues, pools, tasks and failures at a URL",
    )  # fmt: skip
    dashboard.add_argument("url", metavar="URL")
    dashboard.add_argument(
        "--queue", metavar="NAME", action="append", dest="queues",
        help="show this queue (repeat for more; default: every queue at URL)",
    )  # fmt: skip
    dashboard.add_argument("--host", default="127.0.0.1", help="(default: 127.0.0.1)")
    dashboard.add_argument("--port", type=_port_or_any, default=8090, help="(default: 8090)")
    who = dashboard.add_mutually_exclusive_group()
    who.add_argument(
        "--auth", metavar="USER:PASSWORD", help="ask for these (HTTP basic authentication)"
    )
    who.add_argument(
        "--auth-env", metavar="VAR",
        help="ask for the USER:PASSWORD held in this environment variable",
    )  # fmt: skip
    dashboard.set_defaults(run=_dashboard, default_level="warning")

    purge = commands.add_parser(
        "purge", parents=[logging_options], help="discard a queue's pending tasks"
    )
    purge.add_argument("url", metavar="URL")
    purge.add_argument("--queue", metavar="NAME", required=True)
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(run=_purge, default_level="warning")
    return parser


def _port(text: str) -> int:
    """A TCP port number, 1 to 65535 (argparse reports anything else)."""
    port = _positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {text!r}")
    return port


def _port_or_any(text: str) -> int:
    """A TCP port number, or 0 for any free one."""
    return 0 if text == "0" else _port(text)


def _positive_int(text: str) -> int:
    """An argparse ``type``: an integer of at least 1 (argparse names the option)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer of at least 1, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    """An argparse ``type``: a finite number of seconds above 0."""
    try:
        if 0 < float(text) < float("inf"):
            return float(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")


def _worker(args: argparse.Namespace) -> int:
    """Build the broker with the init function and run a pool until signalled."""
    module_name, _, function_name = args.init.partition(":")
    init = _import_init(args.init)
    broker = _call_init(args.init, init, args.url)
    try:
        if args.queue is not None and args.queue != broker.name:
            raise CliError(
                f"--queue {args.queue!r} differs from the queue {broker.name!r} of the broker "
                f"{args.init} returned: the init function gets only the URL, so it must build "
                f"its broker for that queue itself, e.g. get_broker(url, {args.queue!r})"
            )
        if not args.no_scheduler:
            try:
                check_schedules(broker, f"worq-{broker.name}", broker.runner.task_names())
            except PoolError as exc:
                raise CliError(f"{args.init}: {exc}") from None
        with _reported(args.url):
            broker.size()  # an unreachable backend fails here, before starting
        default_workers = {"process": os.cpu_count() or 1, "thread": 1, "asyncio": 1}
        workers = args.workers or default_workers[args.pool]
        timeout = args.timeout or POOL_TIMEOUTS[args.pool]
        fields = {"queue": broker.name, "pool": args.pool}
        concurrency = args.concurrency or 100
        sizes = {"concurrency": concurrency} if args.pool == "asyncio" else {"workers": workers}
        logger.info(
            "cli.worker_starting", module=module_name, function=function_name,
            module_file=getattr(sys.modules.get(module_name), "__file__", None),
            url=mask_url(args.url), timeout_s=timeout, **sizes,
            tasks=broker.runner.task_names(), **fields,
        )  # fmt: skip
        if broker.backend_kind == "memory":
            logger.warning("cli.memory_backend", note="no other process can send tasks", **fields)
        extras: dict[str, Any] = {
            "scheduler": not args.no_scheduler,
            "metrics_port": args.metrics_port,
            "metrics_host": args.metrics_host,
        }
        try:
            if args.pool == "thread":
                _run_thread_pool(broker, workers, timeout, extras)
            elif args.pool == "asyncio":
                _run_asyncio_pool(broker, concurrency, timeout, extras)
            else:
                # The pool calls init(broker.url) in each worker process (WorQ 1.1).
                pool = ProcessPool(
                    broker, init, workers=workers, max_worker_tasks=args.max_worker_tasks,
                    **extras,
                )  # fmt: skip
                pool.start(timeout=timeout, handle_sigterm=True)  # until a stop signal
        except WorqError as exc:  # the metrics port is taken, or prometheus-client missing
            raise CliError(str(exc)) from None
        logger.info("cli.worker_stopped", **fields)
    finally:
        broker.close()
    return 0


def _import_init(spec: str) -> Callable[..., Any]:
    """Import ``MODULE:FUNC``; the current directory is searched too, as with ``python -m``."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise CliError(f"expected MODULE:INIT_FUNC (e.g. tasks:init), got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        found: object = importlib.import_module(module_name)
    except Exception as exc:  # a module can fail to import with any exception
        raise CliError(f"cannot import module {module_name!r}: {_describe(exc)}") from None
    for name in attribute.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise CliError(
                f"cannot import init function {attribute!r} from module {module_name!r}: "
                f"no attribute {name!r}"
            ) from None
    if isinstance(found, TaskSpace):
        raise CliError(
            f"{spec} is a TaskSpace ({found.name!r}, {len(found.tasks)} tasks), not an init "
            f"function: give worq worker a function that builds the broker, e.g. "
            f"def init(url): broker = get_broker(url); broker.expose({attribute}); return broker"
        )
    if not callable(found):
        raise CliError(f"init function {spec} is not callable: it is {_short_repr(found)}")
    if is_coroutine_function(found):
        raise CliError(
            f"init function {spec} is an async def function: worq worker calls it without "
            "an event loop; make it a plain def that returns the broker (tasks may be async)"
        )
    return found


def _call_init(spec: str, init: Callable[..., Any], url: str) -> Broker:
    """``init(url)``, which must return a Broker; its exceptions become one-line errors."""
    try:
        broker = init(url)
    except Exception as exc:
        raise CliError(f"init function {spec} raised {_scrub(_describe(exc), url)}") from None
    if not isinstance(broker, Broker):
        raise CliError(
            f"init function {spec} must return a worq.core.Broker, it returned "
            f"{_scrub(_short_repr(broker), url)}"
        )
    return broker


def _run_thread_pool(broker: Broker, workers: int, timeout: float, extras: dict[str, Any]) -> None:
    """Run a thread pool until SIGTERM or SIGINT, then stop it, finishing running tasks."""
    pool = ThreadPool(broker, workers=workers, **extras)
    run_until_stop_signal(f"worq-{broker.name}", lambda: pool.start(timeout=timeout), pool.stop)


def _run_asyncio_pool(
    broker: Broker, concurrency: int, timeout: float, extras: dict[str, Any]
) -> None:
    """Run an asyncio pool until SIGTERM or SIGINT, then stop it, finishing running tasks."""
    pool = AsyncioPool(broker, concurrency=concurrency, **extras)
    run_until_stop_signal(f"worq-{broker.name}", lambda: pool.start(timeout=timeout), pool.stop)


def _info(args: argparse.Namespace) -> int:
    """Print a queue's name, URL, backend, pending count, counts by state, how long the
    task next in line has waited, ping and live pools (each with its host, pid, kind,
    workers, tasks done and running)."""
    if args.queue is None:
        return _info_all(args)
    with _reported(args.url):
        broker = get_broker(args.url, args.queue)
        try:
            fields: dict[str, Any] = {
                "queue": broker.name,
                "url": mask_url(broker.url),
                "backend": broker.backend_kind,
                "pending": broker.size(),
                "states": {str(state): count for state, count in broker.counts().items()},
                "oldest_pending_s": _waited(broker.next_in_line()),
                "ping": _ping(broker),
            }
            pools = broker.live_pools()
        finally:
            broker.close()
    if args.json:
        print(json.dumps({**fields, "pools": [attrs.asdict(pool) for pool in pools]}))
        return 0
    fields["states"] = ", ".join(f"{state} {count}" for state, count in fields["states"].items())
    fields["pools"] = len(pools) or "none"
    _print_rows(fields)
    if pools:
        now = time.time()
        print()
        _print_table(
            ["pool", "kind", "host", "pid", "workers", "done", "running", "up"],
            [
                [
                    pool.id,
                    pool.kind,
                    pool.host,
                    pool.pid,
                    pool.workers,
                    pool.tasks_done,
                    len(pool.running),
                    f"{now - pool.started:.0f}s",
                ]
                for pool in pools
            ],
        )
    return 0


def _waited(envelope: Envelope | None) -> float | None:
    """Seconds the task next in line has waited since it was due; None if unknown."""
    if envelope is None or envelope.due_ms is None:
        return None
    return waited(envelope.due_ms)


def _print_rows(fields: dict[str, Any]) -> None:
    """``key  value`` lines, aligned; None values left out, booleans as yes or no."""
    rows = [(key, value) for key, value in fields.items() if value is not None]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        shown = ("yes" if value else "no") if isinstance(value, bool) else value
        print(f"{key:<{width}}  {shown}")


def _print_table(columns: list[str], rows: list[list[Any]]) -> None:
    """A table: a header and aligned columns."""
    widths = [max(len(str(cell)) for cell in [column, *(row[i] for row in rows)])
              for i, column in enumerate(columns)]  # fmt: skip
    for row in [columns, *rows]:
        cells = zip(row, widths, strict=True)
        print("  ".join(f"{cell!s:<{width}}" for cell, width in cells).rstrip())


def _info_all(args: argparse.Namespace) -> int:
    """Every worq queue at the URL with its pending count and live pools, so that a typo
    shows at once."""
    with _reported(args.url):
        broker = get_broker(args.url)
        try:
            fields: dict[str, Any] = {
                "url": mask_url(broker.url),
                "backend": broker.backend_kind,
                "ping": _ping(broker),
            }
            queues, pools = {}, {}
            for name in broker.queue_names():
                other = get_broker(args.url, name)
                try:
                    queues[name] = other.size()
                    pools[name] = len(other.live_pools())
                finally:
                    other.close()
        finally:
            broker.close()
    if args.json:
        print(json.dumps({**fields, "queues": queues, "pools": pools}))
        return 0
    _print_rows({**fields, "queues": len(queues) or "none"})
    if queues:
        print()
        _print_table(
            ["queue", "pending", "pools"], [[name, queues[name], pools[name]] for name in queues]
        )
    return 0


def _schedules(args: argparse.Namespace) -> int:
    """Print every schedule registered at the URL (or on one queue): its task, when it
    fires, its last and next fire times and the task of its last fire."""
    rows: list[dict[str, Any]] = []
    with _reported(args.url):
        names = [args.queue] if args.queue is not None else _queue_names(args.url)
        for name in names:
            broker = get_broker(args.url, name)
            try:
                states, _ = broker.schedule_states()
            finally:
                broker.close()
            for schedule, state in sorted(states.items()):
                rows.append(_schedule_row(name, schedule, state))
    if args.json:
        print(json.dumps({"url": mask_url(args.url), "schedules": rows}))
        return 0
    if not rows:
        print(
            f"no schedules at {mask_url(args.url)}"
            + (f" on queue {args.queue!r}" if args.queue else "")
        )
        return 0
    columns = ["queue", "schedule", "task", "when", "last", "next", "last_task"]
    _print_table(columns, [[row[c] for c in columns] for row in rows])
    return 0


def _queue_names(url: str) -> list[str]:
    """Every queue with worq data at ``url``."""
    broker = get_broker(url)
    try:
        return broker.queue_names()
    finally:
        broker.close()


def _schedule_row(queue: str, name: str, state: ScheduleState) -> dict[str, Any]:
    """One schedule as ``worq schedules`` shows it."""
    try:
        spec = json.loads(state.definition)
    except ValueError:
        spec = {}
    if "cron" in spec:
        when = f"cron {spec['cron']} ({spec.get('tz', 'UTC')})"
    elif "every_s" in spec:
        when = f"every {spec['every_s']:g}s"
    else:
        when = "?"
    return {
        "queue": queue, "schedule": name, "task": spec.get("task", "?"), "when": when,
        "last": format_ms(state.last_ms), "next": format_ms(state.next_ms),
        "last_task": state.task_id or "-",
    }  # fmt: skip


def _purge(args: argparse.Namespace) -> int:
    """Discard a queue's pending tasks, after asking unless ``--yes``; 1 when refused."""
    with _reported(args.url):
        broker = get_broker(args.url, args.queue)
        try:
            where = f"queue {broker.name!r} at {mask_url(broker.url)}"
            pending = None if args.yes else broker.size()
            if pending == 0:
                print(f"No pending tasks in {where}: nothing discarded.")
                return 0
            if pending and not _confirm(f"Discard {_tasks(pending)} from {where}? [y/N] "):
                print("Aborted: nothing discarded.", file=sys.stderr)
                return 1
            count = broker.discard_pending_tasks()
        finally:
            broker.close()
    print(f"Discarded {_tasks(count)} from {where}.")
    return 0


def _failed(args: argparse.Namespace) -> int:
    """List the failed-task registry of a queue, the latest first; or empty it (``--purge``,
    after asking unless ``--yes``)."""
    with _reported(args.url):
        broker = get_broker(args.url, args.queue)
        try:
            where = f"queue {broker.name!r} at {mask_url(broker.url)}"
            if args.purge:
                prompt = f"Empty the failed-task registry of {where}? [y/N] "
                if not args.yes and not _confirm(prompt):
                    print("Aborted: nothing discarded.", file=sys.stderr)
                    return 1
                dropped = broker.discard_failed()
                print(f"Discarded {len(dropped)} failed task(s) from the registry of {where}.")
                return 0
            tasks = broker.failed_tasks(args.limit)
        finally:
            broker.close()
    if args.json:
        listed = [
            {**attrs.asdict(t, filter=lambda a, _: a.name != "message"),
             "message": t.message.decode("utf-8", "backslashreplace")}
            for t in tasks
        ]  # fmt: skip
        print(json.dumps({"queue": args.queue, "url": mask_url(args.url), "failed": listed}))
        return 0
    if not tasks:
        print(f"No failed tasks in the registry of {where}.")
        return 0
    _print_table(
        ["id", "task", "status", "attempts", "failed", "error"],
        [
            [t.id, t.name, t.status, t.attempts, _when(t.failed_at), _one_line(t.error)[:80]]
            for t in tasks
        ],
    )
    return 0


def _retry(args: argparse.Namespace) -> int:
    """Send failed tasks again, naming what happened to each; 1 when some could not be."""
    if bool(args.task_ids) == args.all:
        args.parser.error("give TASK_IDs or --all (not both)")
    with _reported(args.url):
        broker = get_broker(args.url, args.queue)
        try:
            where = f"queue {broker.name!r} at {mask_url(broker.url)}"
            done = broker.retry_failed(None if args.all else args.task_ids)
        finally:
            broker.close()
    if not done:
        print(f"No failed tasks in the registry of {where}: nothing retried.")
        return 0
    why = {
        RetryResult.UNKNOWN: "not in the failed-task registry (see worq failed)",
        RetryResult.BUSY: "a task of that id exists again (sent anew, or retried already)",
        RetryResult.MISSING_ARGUMENT: (
            "the result of a task it takes as an argument is gone; send it anew"
        ),
    }
    for task_id, result in done.items():
        if result is RetryResult.RETRIED:
            print(f"retried {task_id}")
        else:
            print(f"not retried {task_id}: {why[result]}", file=sys.stderr)
    retried = sum(result is RetryResult.RETRIED for result in done.values())
    print(f"Retried {retried} of {len(done)} task(s) on {where}.")
    return 0 if retried == len(done) else 1


def _when(seconds: float) -> str:
    """A time as UTC, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def _dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard until SIGTERM or SIGINT; refuse to serve beyond loopback
    without authentication."""
    auth = args.auth
    if args.auth_env is not None:
        auth = os.environ.get(args.auth_env)
        if not auth:
            raise CliError(f"--auth-env {args.auth_env}: that environment variable is not set")
    if auth is not None and ":" not in auth:
        raise CliError("--auth takes USER:PASSWORD (a colon between them)")
    if auth is None and not _loopback(args.host):
        raise CliError(
            f"--host {args.host} would show your queues and let anyone retry or discard "
            "their failed tasks: give --auth USER:PASSWORD (or --auth-env VAR)"
        )
    try:
        import uvicorn

        from worq.dashboard import app
    except ImportError:
        raise CliError("worq dashboard needs its extra: pip install 'worq[dashboard]'") from None
    with _reported(args.url):
        get_broker(args.url).close()  # a malformed URL is reported here, not at the first page
        served = app(args.url, args.queues, auth=auth)
    try:
        listening = socket.create_server((args.host, args.port))
    except OSError as exc:
        raise CliError(
            f"cannot serve the dashboard on {args.host}:{args.port}: {exc.strerror or exc}; "
            "choose another --port"
        ) from None
    port = listening.getsockname()[1]
    print(f"worq dashboard of {mask_url(args.url)} on http://{args.host}:{port}/", flush=True)
    config = uvicorn.Config(served, log_level=args.log_level or "warning", log_config=None)
    # uvicorn stops on SIGTERM, then raises it again once stopped: caught here, it
    # ends the command with status 0 instead of killing the process.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.Server(config).run(sockets=[listening])
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _confirm(prompt: str) -> bool:
    """Ask on stderr (stdout stays the command's result); only y or yes on stdin agrees."""
    print(prompt, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@contextlib.contextmanager
def _reported(url: str) -> Iterator[None]:
    """A malformed URL (``ValueError``) or backend failure (``WorqError``) becomes a CliError."""
    try:
        yield
    except (ValueError, WorqError) as exc:
        raise CliError(_scrub(str(exc), url)) from None


def _ping(broker: Broker) -> bool | None:
    """Whether a server answers; None for the memory backend, which has no server."""
    return None if broker.backend_kind == "memory" else broker.ping()


def _tasks(count: int) -> str:
    return f"{count} pending task{'' if count == 1 else 's'}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _short_repr(obj: object) -> str:
    """A repr for one line: whole when short, else just the type (never cut mid-name)."""
    shown = repr(obj)
    if len(shown) > 80:
        return f"a {type(obj).__qualname__} instance"
    return f"{shown} ({type(obj).__qualname__})"


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL's password masked, should an init function quote the URL."""
    return text.replace(url, mask_url(url)) if url else text


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
