"""Redis task queue and result store.

Workers and clients in different processes, on different machines, share a
queue through one Redis server. Every multi-key step is one Lua script
(``redis_scripts/*.lua``, loaded once and run by SHA; redis-py reloads a
script transparently after a server restart), so no step is ever half
applied whatever process dies when. All keys of a queue share one hash tag,
so the layout works unchanged on Redis Cluster.

A connection can break after a script ran but before its reply arrived. So
every call is retried after a connection error (see :data:`RETRY_DELAYS`)
under the request token of its first attempt, and the scripts that store or
hand out something record what each token got (see :data:`REPLAY_TTL`): a
retry gets the answer the lost reply carried, and no step is done twice.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import attrs
import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import AbstractConnection
from redis.exceptions import RedisError
from redis.retry import Retry

from worq._deadline import Deadline
from worq._events import logger
from worq._ids import worker_label
from worq._urls import (
    CLUSTER_SCHEMES,
    ClusterURL,
    check_redis_database,
    mask_url,
    parse_cluster_url,
)
from worq.const import DEFAULT, TaskStatus
from worq.exceptions import BackendUnavailable, WorqError
from worq.queue import redis_scripts
from worq.queue._failures import encode_note, read_filed, read_run
from worq.queue._redis_connections import Command, pack
from worq.queue._redis_keys import RedisKeys
from worq.queue._redis_route import ClusterRoute, Route, ServerRoute
from worq.typing import (
    DeferResult,
    FailureNote,
    FiledFailure,
    FireResult,
    NewTask,
    RetryResult,
    ScheduleState,
    Taken,
    TaskRecord,
)

__all__ = ["TaskQueue"]

T = TypeVar("T")

MAX_BLOCK = 1.0
"""Longest single blocking wait for a result before checking the task still exists.

While a task runs, a waiter wakes at its lease deadline instead, to see at
once whether the lease lapsed."""

INTERRUPT_TIMEOUT = 2.0
"""Longest interrupt_waits tries to unblock the waits of get() before giving up."""

_UNBLOCK_RECHECK = 0.02
"""Seconds interrupt_waits gives a waiter to leave its wait before unblocking it again."""

BATCH_SIZE = 1000
"""Most script calls sent in one pipelined round trip by enqueue_tasks and
pop_results; a larger batch is sent in chunks of this many."""

DROP_BATCH = 1000
"""Most tasks one discard_pending script call drops, cascading to dependants;
bounds how long the server is blocked, whatever the depth of a pending chain."""

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a TCP connection before calling the server unreachable."""

RETRY_DELAYS = (0.0, 0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.4, 0.5)
"""Seconds to wait before each retry of a command cut off by a connection error.

A reset connection or a restarting server is ridden out: a call is tried
again after each of these waits, about two seconds in all, and raises
BackendUnavailable only when it still fails. Many short waits come first,
as a connection that keeps being cut fails each try only now and then; none
is longer than half a second, so that a task leased by an attempt whose
reply was lost is still under that lease when the next retry comes, even
with leases of a second. Attempts that are slow to fail (a host that does
not answer takes ``socket_connect_timeout``) cut the series short: no retry
starts once the call has been going for longer than the sum of the waits.
Retries carry the request token of the first attempt, so a step whose reply
was lost is never done twice (see :data:`REPLAY_TTL`).
"""

_RETRY_WINDOW = sum(RETRY_DELAYS)

_CUT_WAIT_PAUSE = 0.05
"""Seconds to pause after a blocking wait was cut, so that waits that keep
failing at once (while script calls go through) cannot spin."""

_NOTHING_TAKEN = [b"none", -1]
"""A get.lua reply saying nothing was taken and no delayed task is due."""

REPLAY_TTL = 5.0
"""Seconds the server remembers what a request token got (a task stored, a
task or a result taken), for the retries of that call, on top of the
connection's ``socket_connect_timeout`` and ``socket_timeout``.

A retry can reach the server that long after the attempt whose reply was
lost: that attempt may fail up to ``socket_timeout`` after it ran, and the
last retry starts within :data:`RETRY_DELAYS` and may take a connect timeout
to get through. With worq's defaults it is 10 s in all. Taken results are
kept that long too, under the token of their taker."""

_SCRIPTS = (
    "enqueue",
    "defer",
    "get",
    "heartbeat",
    "set_result",
    "retry",
    "reclaim",
    "pop_result",
    "status",
    "discard_pending",
    "size",
    "arguments",
    "schedule_register",
    "schedule_states",
    "schedule_fire",
    "pool_announce",
    "live_pools",
    "next_in_line",
    "file_failure",
    "failed_tasks",
    "retry_failed",
    "discard_failed",
    "stats_add",
    "stats_read",
    "inspect",
)

_QUEUE_OF_KEY = re.compile(rb"^worq:\{([^{}]+)\}:")
"""The queue name in one of worq's keys (queue names cannot hold braces)."""

_TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.AskError,  # and MovedError: a cluster node serves the slot elsewhere now
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)
"""Errors a retry can cure: a connection cut, or a cluster node turning a command away
(it did not run) while its slot moves or a replica takes over."""
_PERSISTENT = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)
"""Connection errors no retry can cure: wrong credentials, a user without rights."""


_SOURCES = redis_scripts.sources(_SCRIPTS)

_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": CONNECT_TIMEOUT,
    "socket_timeout": None,
    "retry": Retry(NoBackoff(), 0),
}
"""redis-py client options (the URL's query options take precedence)."""

_REFUSALS = 4
"""Most round trips one chunk of script calls gets while nodes refuse it with
NOSCRIPT or MOVED: MOVED after a failover, then NOSCRIPT on the new master, then it runs."""


@attrs.define
class _Script:
    """One of worq's Lua scripts: its source and SHA1 (what EVALSHA names it by)."""

    source: str
    sha: str = attrs.field()

    @sha.default
    def _sha_of_source(self) -> str:
        return hashlib.sha1(self.source.encode("utf-8")).hexdigest()


class _RequestTokens:
    """Request tokens unique across processes: a random prefix per process, then a counter.

    A token only has to differ from every other live one, never to be hard
    to guess, and drawing 16 random bytes per call (``uuid4``) costs a
    system call each: about 15 µs on a virtual machine, four times per task.
    A forked child draws a prefix of its own.
    """

    def __init__(self) -> None:
        self._fresh_prefix()
        os.register_at_fork(after_in_child=self._fresh_prefix)

    def _fresh_prefix(self) -> None:
        self._prefix = uuid.uuid4().hex[:20]
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


_TOKENS = _RequestTokens()


@attrs.define
class _Request:
    """The identity of one logical call, shared by all its attempts.

    Placed among a script's arguments, it is sent as the retry flag: "1" once
    an attempt of the call failed (it may have run, its reply lost), so that
    the script looks up what the token already got before doing anything.
    """

    token: str = attrs.Factory(_TOKENS.next)
    retried: bool = False


_Arg = str | bytes | float | _Request
"""A script argument."""


class Retrying:
    """The retries of one logical call (see :data:`RETRY_DELAYS`), for the sync
    client and the async one alike.

    Args:
        owner: The queue whose errors name the server and queue.
        requests: The call's requests, marked retried at the first failure.
    """

    def __init__(self, owner: TaskQueue, requests: Sequence[_Request]) -> None:
        self._owner = owner
        self._requests = requests
        self._delays = iter(RETRY_DELAYS)
        self._window = Deadline(_RETRY_WINDOW)

    def after(self, exc: redis.exceptions.RedisError) -> float:
        """Seconds to wait before the next attempt, the last one having failed with ``exc``.

        Raises:
            BackendUnavailable: It kept failing with connection errors.
            WorqError: No retry can cure it (refused, or wrong credentials).
        """
        if isinstance(exc, _PERSISTENT) or not isinstance(exc, _TRANSIENT):
            raise self._owner._error(exc) from exc
        for request in self._requests:
            request.retried = True
        delay = next(self._delays, None)
        if delay is None or self._window.passed():
            raise self._owner._error(exc) from exc
        return delay


@attrs.frozen
class _ScriptCall:
    """One run of a Lua script: its name, KEYS and ARGV (a _Request sent as the retry flag)."""

    script: str
    keys: list[str]
    args: list[_Arg]

    @property
    def requests(self) -> list[_Request]:
        """The call's request, if it has one (the logical call it belongs to)."""
        return [arg for arg in self.args if isinstance(arg, _Request)]

    def argv(self) -> list[str | bytes | float]:
        """The ARGV to send now: each _Request as its current retry flag."""
        return [
            ("1" if arg.retried else "0") if isinstance(arg, _Request) else arg for arg in self.args
        ]


class TaskQueue:
    """Redis-backed task queue; see :class:`worq.typing.TaskQueue`.

    Args:
        url: ``redis://[user:password@]host[:port][/db]``, ``rediss://…`` (TLS;
            ``?ssl_ca_certs=/path`` names a CA) or ``unix:///path.sock?db=N``.
            Query parameters redis-py's ``from_url`` understands are passed on.
        name: Queue name; must not contain braces (they delimit the hash tag).
        initial_result_timeout: Seconds a lease lasts when a task is taken,
            before the first heartbeat renews it (the manual's name; the
            attribute is ``initial_lease``).
        redis_factory: Class whose ``from_url`` makes the client.

    Raises:
        ValueError: The URL is malformed (the message masks any password).
    """

    def __init__(
        self,
        url: str,
        name: str = DEFAULT,
        initial_result_timeout: float = 60,
        redis_factory: type[redis.Redis] = redis.Redis,
    ) -> None:
        self._url = url
        self._masked_url = mask_url(url)
        check_redis_database(url)
        self._name = name
        self.keys = RedisKeys.for_queue(name)
        self.initial_lease = initial_result_timeout
        """Seconds a lease lasts when a task is taken, before a heartbeat renews it."""
        cluster = None
        if urlsplit(url).scheme in CLUSTER_SCHEMES:
            cluster = parse_cluster_url(url)  # raises ValueError, naming the masked URL
            url, redis_factory = cluster.first, redis.Redis
        try:
            # socket_timeout=None: blocking waits (BLMOVE) last as long as asked;
            # redis-py's default (5 s in recent versions) would cut them. No
            # redis-py retries: they would resend a script as a first attempt,
            # without the retry flag that makes it safe (see _call). Query
            # options in the URL take precedence over the timeouts.
            client = redis_factory.from_url(url, **_CLIENT_OPTIONS)
            pool = client.connection_pool
            pool.connection_class(**pool.connection_kwargs)  # checks the options, no I/O
        except (ValueError, TypeError) as exc:
            raise ValueError(f"malformed Redis URL {self._masked_url!r}: {exc}") from None
        kwargs = pool.connection_kwargs
        timeouts = (kwargs.get("socket_timeout") or 0, kwargs.get("socket_connect_timeout") or 0)
        self._replay_ms = _ms(REPLAY_TTL + sum(map(float, timeouts)))
        self._scripts = {name: _Script(source) for name, source in _SOURCES.items()}
        self._cluster_url = cluster
        self._route: Route
        if cluster is None:
            self._route = ServerRoute(client)
        else:
            client.close()
            self._route = ClusterRoute(
                functools.partial(self._connect_cluster, cluster), self.keys.queue
            )
        self._waiting = _Waiting()
        self._abandoned: dict[str, tuple[_Request, float]] = {}
        self._abandoned_lock = threading.Lock()

    @property
    def redis(self) -> redis.Redis:
        """A client of the server (on a cluster, of the node) holding this queue's keys."""
        return self._route.node()[0]

    @property
    def clustered(self) -> bool:
        """True on a Redis Cluster (a ``redis+cluster://`` URL)."""
        return self._cluster_url is not None

    def node_url(self) -> str:
        """A ``redis://`` URL of the server holding this queue: on a cluster, of the
        node serving its slot now (asking the cluster first, if need be), with the
        cluster URL's user, password and query options; for the async client.

        Raises:
            BackendUnavailable: The cluster cannot be reached to ask.
            WorqError: A seed is not in cluster mode.
        """
        if self._cluster_url is None:
            return self._url
        kwargs = self._call(self._route.node)[0].connection_pool.connection_kwargs
        return self._cluster_url.for_node(str(kwargs["host"]), int(kwargs["port"]))

    def turned_away(self) -> None:
        """A node refused a call of the async twin (MOVED) or its connection broke:
        ask the cluster again which node serves the queue, before the next call."""
        self._route.turned_away()

    def _connect_cluster(self, cluster: ClusterURL) -> RedisCluster:
        """The cluster client, having learnt the slot map from the first seed that answers.

        Raises:
            redis.exceptions.ConnectionError: No seed answered (retried as an outage).
            WorqError: A seed is a server not in cluster mode.
        """
        seeds = [ClusterNode(host, port) for host, port in cluster.seeds[1:]]  # type: ignore[no-untyped-call]  # untyped in redis-py
        try:
            return RedisCluster.from_url(cluster.first, startup_nodes=seeds, **_CLIENT_OPTIONS)
        except redis.exceptions.RedisClusterException as exc:
            if "not enabled" in str(exc):
                raise WorqError(
                    f"the Redis server at {self._masked_url} is not in cluster mode "
                    f"(queue {self._name!r}): use redis://host:port for a single server, "
                    "redis+cluster:// only for a Redis Cluster"
                ) from None
            raise redis.exceptions.ConnectionError(str(exc)) from None

    @property
    def url(self) -> str:
        return self._url

    @property
    def name(self) -> str:
        return self._name

    @property
    def initial_result_timeout(self) -> float:
        """:attr:`initial_lease` under the name the WorQ 1.1 manual gives it."""
        return self.initial_lease

    @initial_result_timeout.setter
    def initial_result_timeout(self, seconds: float) -> None:
        self.initial_lease = seconds

    def _error(self, exc: RedisError) -> WorqError:
        """The worq error for a redis-py one, naming the server and queue."""
        if isinstance(exc, _TRANSIENT):
            return BackendUnavailable(
                f"cannot reach Redis at {self._masked_url} (queue {self._name!r}): {exc}; "
                "check that the server is running and the URL is right"
            )
        return WorqError(
            f"Redis at {self._masked_url} refused a command for queue {self._name!r}: {exc}"
        )

    @contextlib.contextmanager
    def _request(self, key: str) -> Iterator[_Request]:
        """The identity of a call, picking up the one a like call abandoned.

        A call that gives up with BackendUnavailable after an attempt that
        may have run leaves its request under ``key``, for a short while:
        when the caller tries again (a pool's next ``get`` on the same thread,
        a ``wait`` again on the same task), the scripts find what it got.

        Args:
            key: What makes two calls the same: the operation and its task
                id, or the thread for ``get``.
        """
        now = time.monotonic()
        with self._abandoned_lock:
            found = self._abandoned.pop(key, None)
        request = _Request() if found is None or found[1] < now else found[0]
        try:
            yield request
        except BackendUnavailable:
            if request.retried:
                now = time.monotonic()
                with self._abandoned_lock:
                    for stale in [k for k, (_, end) in self._abandoned.items() if end < now]:
                        del self._abandoned[stale]
                    self._abandoned[key] = (request, now + self._replay_ms / 1000)
            raise

    def _call(self, step: Callable[[], T], requests: Sequence[_Request] = ()) -> T:
        """Run ``step`` (one command, or one pipeline), retrying it after connection errors.

        Args:
            step: Sends the command; called again for each retry.
            requests: The logical calls the command belongs to (one, or for a
                pipeline those of its commands), marked retried at the first failure.

        Raises:
            BackendUnavailable: It kept failing (see :data:`RETRY_DELAYS`).
            WorqError: Redis refused it.
        """
        retrying = Retrying(self, requests)
        while True:
            try:
                return step()
            except redis.exceptions.RedisError as exc:
                if isinstance(exc, _TRANSIENT):
                    self._route.turned_away()
                time.sleep(retrying.after(exc))

    def _run(self, script: str, keys: Sequence[str], args: Sequence[_Arg]) -> Any:
        """Run one of the Lua scripts; every key it is given shares the queue's hash tag.

        A :class:`_Request` among ``args`` is sent as that call's retry flag.
        """
        (reply,) = self._run_pipelined([_ScriptCall(script, list(keys), list(args))])
        return reply

    def _evalsha(self, call: _ScriptCall) -> Command:
        """The EVALSHA command running ``call`` (its request sent as the retry flag)."""
        return ("EVALSHA", self._scripts[call.script].sha, len(call.keys), *call.keys, *call.argv())

    def _run_pipelined(self, calls: Sequence[_ScriptCall]) -> list[Any]:
        """Run many script calls, :data:`BATCH_SIZE` per pipelined round trip; their replies.

        Each call stays one atomic script run (the pipeline is no
        transaction). A chunk cut by a connection error is sent again whole,
        each call with its own request token and retry flag, as :meth:`_run`
        retries one call: a script whose reply was lost answers what it did
        and does nothing twice.
        """
        replies: list[Any] = []
        for start in range(0, len(calls), BATCH_SIZE):
            chunk = calls[start : start + BATCH_SIZE]
            requests = [request for call in chunk for request in call.requests]
            replies += self._call(functools.partial(self._send_chunk, chunk), requests)
        return replies

    def _send_chunk(self, chunk: Sequence[_ScriptCall]) -> list[Any]:
        """One pipelined round trip of script calls by SHA (no SCRIPT EXISTS first),
        on a held connection (see :mod:`worq.queue._redis_connections`).

        Calls refused with NOSCRIPT (the server restarted or flushed its
        scripts, or a cluster node took over the queue) did not run: their
        scripts are loaded and they are sent again. So are calls a cluster
        node refused with MOVED (the queue's slot is served elsewhere now),
        to the node that serves it.

        Raises:
            redis.exceptions.RedisError: A call failed otherwise.
        """
        replies: list[Any] = [None] * len(chunk)
        todo = list(range(len(chunk)))
        for _ in range(_REFUSALS):
            client, held = self._route.node()
            commands = [self._evalsha(chunk[i]) for i in todo]
            refused: list[int] = []
            moved = False
            for i, reply in zip(todo, held.run(commands), strict=True):
                if isinstance(reply, redis.exceptions.NoScriptError | redis.exceptions.MovedError):
                    refused.append(i)
                    moved = moved or isinstance(reply, redis.exceptions.MovedError)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    replies[i] = reply
            if not refused:
                return replies
            if moved:
                self._route.turned_away()
            else:
                for name in {chunk[i].script for i in refused}:
                    script = self._scripts[name]
                    script.sha = client.script_load(script.source)
            todo = refused
        raise redis.exceptions.ConnectionError(
            "refused again and again (NOSCRIPT or MOVED) right after loading the scripts "
            "or following the cluster to the node serving the queue"
        )

    def _wait_on(self, key: str, block: float, then: _ScriptCall | None = None) -> tuple[bool, Any]:
        """Wait up to ``block`` seconds for list ``key`` (a result) to have an element,
        then run ``then``, in one round trip on a held connection.

        Moving the list's first element onto its head waits for the result without
        taking it: ``then`` (pop_result.lua) takes it, under its own token,
        as soon as it is there, with no round trip of its own.

        A wait cut by a connection error is not retried: it returns after a
        short pause, ``then`` marked retried and unanswered. A long wait can
        be cut at any moment (a proxy, ``CLIENT KILL``) with the server up,
        so its failures say nothing of an outage; the script call the caller
        makes next is retried as usual, and raises BackendUnavailable if the
        server is down. A ``then`` refused with NOSCRIPT is unanswered too.

        Returns:
            Whether an element came, and ``then``'s reply (None: no ``then``,
            or unanswered; run it again).
        """
        commands: list[Command] = [("BLMOVE", key, key, "LEFT", "LEFT", block)]
        if then is not None:
            commands.append(self._evalsha(then))
        try:
            moved, *replies = self._route.node()[1].run(commands)
        except _PERSISTENT as exc:
            raise self._error(exc) from exc
        except _TRANSIENT:
            self._route.turned_away()
            for request in then.requests if then is not None else ():
                request.retried = True
            time.sleep(_CUT_WAIT_PAUSE)
            return False, None
        except redis.exceptions.RedisError as exc:
            raise self._error(exc) from exc
        reply = replies[0] if replies else None
        for answer in (moved, reply):
            if isinstance(answer, Exception) and _cut(answer):  # turned away: it did not run
                self._route.turned_away()
                return False, None
            if isinstance(answer, redis.exceptions.ResponseError) and not isinstance(
                answer, redis.exceptions.NoScriptError
            ):
                raise self._error(answer) from answer
        return isinstance(moved, bytes), None if isinstance(reply, Exception) else reply

    def _unexpected(self, script: str, reply: object) -> WorqError:
        """The error for a reply no script of this version gives."""
        shown = repr(reply)
        if len(shown) > 200:
            shown = shown[:200] + "..."
        return WorqError(
            f"Redis at {self._masked_url} gave the {script} script of queue {self._name!r} "
            f"an unexpected reply: {shown} (is another program writing to worq's keys?)"
        )

    def _read(self, script: str, reply: Any, read: Callable[[Any], T]) -> T:
        """``read(reply)``, or a WorqError when the reply does not have its shape."""
        try:
            return read(reply)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            raise self._unexpected(script, reply) from exc

    def _store_call(self, task: NewTask, request: _Request) -> _ScriptCall:
        """The script call storing ``task``: enqueue.lua, or defer.lua when it takes
        arguments. The one place either script's KEYS and ARGV are built, for
        single and batched calls alike."""
        k = self.keys
        keep = "1" if task.keep_result else "0"
        record = k.request(request.token)
        if task.argument_ids:
            keys = [k.task(task.task_id), k.result(task.task_id), k.queue, record]
            for arg_id in task.argument_ids:
                keys += [k.task(arg_id), k.result(arg_id), k.deps(arg_id)]
            args: list[_Arg] = [
                k.prefix, task.task_id, task.message, keep, self._replay_ms, request,
                *task.argument_ids,
            ]  # fmt: skip
            return _ScriptCall("defer", keys, args)
        keys = [k.task(task.task_id), k.result(task.task_id), k.queue, k.delayed, record]
        args = [
            k.prefix, task.task_id, task.message, keep, "1" if task.track else "0",
            _delay_ms(task.delay), self._replay_ms, request,
        ]  # fmt: skip
        return _ScriptCall("enqueue", keys, args)

    @staticmethod
    def _store_key(task: NewTask) -> str:
        """What makes two store calls the same, for :meth:`_request`."""
        return f"{'defer' if task.argument_ids else 'enqueue'}:{task.task_id}"

    def enqueue_task(
        self, task_id: str, message: bytes, *, keep_result: bool, track: bool, delay: float = 0
    ) -> bool:
        task = NewTask(task_id, message, keep_result, track, delay)
        with self._request(self._store_key(task)) as request:
            call = self._store_call(task, request)
            reply = self._run(call.script, call.keys, call.args)
        return self._read("enqueue", reply, _boolean)

    def defer_task(
        self, task_id: str, message: bytes, argument_ids: Sequence[str], *, keep_result: bool
    ) -> DeferResult:
        task = NewTask(task_id, message, keep_result, True, 0, tuple(argument_ids))
        with self._request(self._store_key(task)) as request:
            call = self._store_call(task, request)
            reply = self._run(call.script, call.keys, call.args)
        return self._read("defer", reply, _read_defer)

    def enqueue_tasks(self, tasks: Sequence[NewTask]) -> list[DeferResult]:
        """Store the tasks in pipelined chunks of :data:`BATCH_SIZE`, one round trip each."""
        with contextlib.ExitStack() as stack:
            calls = [
                self._store_call(task, stack.enter_context(self._request(self._store_key(task))))
                for task in tasks
            ]
            replies = self._run_pipelined(calls)
        return [
            self._read(call.script, reply, _read_defer if call.script == "defer" else _read_stored)
            for call, reply in zip(calls, replies, strict=True)
        ]

    def get(self, timeout: float | None) -> Taken | None:
        with self._request(f"get@{threading.get_ident()}") as request:
            return self._get(request, timeout)

    def _get_call(self, request: _Request, claimed: str) -> _ScriptCall:
        """The get.lua call under ``request``; ``claimed`` "1" right after a BLMOVE."""
        k = self.keys
        keys = [k.queue, k.claimed, k.delayed, k.claimed_since, k.request(request.token)]
        args: list[_Arg] = [
            k.prefix, _ms(self.initial_lease), claimed, self._replay_ms, request, worker_label(),
        ]  # fmt: skip
        return _ScriptCall("get", keys, args)

    def _get(self, request: _Request, timeout: float | None) -> Taken | None:
        deadline = Deadline(timeout)
        epoch = self._waiting.epoch
        call = self._get_call(request, "")
        reply = self._run(call.script, call.keys, call.args)
        while True:
            taken, next_due_ms = self._read("get", reply, _read_get)
            if taken is not None:
                return taken
            now = time.monotonic()
            if deadline.passed(now) or self._waiting.epoch != epoch:
                return None
            remaining = deadline.remaining(now)
            next_due = None if next_due_ms < 0 else next_due_ms / 1000
            waits = [t for t in (remaining, next_due) if t is not None]
            block = min(waits) if waits else 0  # 0: until a task arrives
            reply = self._wait_and_get(block, epoch, self._get_call(request, "1"))

    def _wait_and_get(self, block: float, epoch: int, call: _ScriptCall) -> Any:
        """BLMOVE the next id to the claimed list and run get.lua on it, in one round trip.

        The wait runs on a connection interrupt_waits can unblock. ``CLIENT
        UNBLOCK`` ends the wait as a timeout would, atomically: no id is moved
        by a wait that was cut, and get.lua, which then finds nothing of this
        wait's in the claimed list, answers "none". A round trip cut by a
        connection error is followed by get.lua alone, marked retried: its
        request record hands back a task it took with a lost reply, and an id
        the BLMOVE moved is taken from the claimed list. So is one whose
        script the server had flushed (NOSCRIPT).
        """
        k = self.keys
        try:
            with self._route.node()[1].connection() as conn:
                client_id = self._waiting.client_id(conn)
                if client_id is None:
                    conn.send_command("CLIENT", "ID")  # type: ignore[no-untyped-call]  # untyped in redis-py
                    client_id = self._waiting.remember(conn, int(conn.read_response()))
                if not self._waiting.enter(client_id, epoch):
                    return _NOTHING_TAKEN  # interrupted before the wait began
                commands = [
                    ("BLMOVE", k.queue, k.claimed, "RIGHT", "LEFT", block),
                    self._evalsha(call),
                ]
                try:
                    conn.send_packed_command([pack(commands)])  # type: ignore[no-untyped-call]  # untyped in redis-py
                    conn.read_response()  # the moved id, or None: get.lua takes it either way
                finally:
                    self._waiting.leave(client_id)
                return conn.read_response()
        except _PERSISTENT as exc:
            raise self._error(exc) from exc
        except redis.exceptions.NoScriptError:
            pass  # the BLMOVE went through; get.lua, loaded again, takes what it moved
        except redis.exceptions.RedisError as exc:
            if not _cut(exc):
                raise self._error(exc) from exc
            self._route.turned_away()
            for request in call.requests:
                request.retried = True
            time.sleep(_CUT_WAIT_PAUSE)  # a cut wait says nothing of an outage (see _wait_on)
        return self._run(call.script, call.keys, call.args)

    def interrupt_waits(self) -> None:
        """Make every get() now waiting on this queue return None at once.

        For a pool that stops: its idle workers leave their wait now instead
        of when its timeout runs out. Waits for results are not touched.
        """
        blocked = self._waiting.interrupt()
        deadline = Deadline(INTERRUPT_TIMEOUT)
        while blocked and not deadline.passed():
            # An UNBLOCK may reach the server before the BLMOVE it is meant for
            # (they travel on different connections): repeat until each waiter
            # is out of its wait.
            for client_id in blocked:
                with contextlib.suppress(WorqError):  # the server is gone: nothing waits on it
                    self._call(functools.partial(self._unblock, client_id))
            blocked = self._waiting.still_blocked(_UNBLOCK_RECHECK)

    def _unblock(self, client_id: int) -> None:
        self.redis.client_unblock(client_id)

    def size(self) -> int:
        k = self.keys
        reply = self._run("size", [k.queue, k.delayed, k.wakes, k.deferred], [])
        return self._read("size", reply, _integer)

    def counts(self) -> dict[TaskStatus, int]:
        """One pipelined read of the queue's lists and sets; approximate while tasks move."""
        k = self.keys

        def read() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.scard(k.deferred)
            pipe.zcard(k.delayed)
            pipe.llen(k.queue)
            pipe.get(k.wakes)
            pipe.zcard(k.processing)
            return list(pipe.execute())

        pending, delayed, queued, wakes, processing = self._call(read)
        return {
            TaskStatus.PENDING: int(pending),
            TaskStatus.DELAYED: int(delayed),
            TaskStatus.ENQUEUED: max(0, int(queued) - int(wakes or 0)),
            TaskStatus.PROCESSING: int(processing),
        }

    def discard_pending(self) -> int:
        k = self.keys
        keys = [k.queue, k.delayed, k.wakes, k.deferred, k.dropping]
        reply = self._run("discard_pending", keys, [k.prefix, "start", DROP_BATCH])
        found, left = self._read("discard_pending", reply, _integers)
        while left:
            reply = self._run("discard_pending", keys, [k.prefix, "continue", DROP_BATCH])
            _, left = self._read("discard_pending", reply, _integers)
        return found

    def get_arguments(self, task_id: str) -> dict[str, bytes]:
        k = self.keys
        flat = self._run("arguments", [k.task(task_id)], [k.prefix])
        return self._read("arguments", flat, _read_pairs)

    def renew_lease(self, task_id: str, timeout: float, lease: str | None = None) -> bool:
        """Renew a running task's lease for ``timeout`` seconds (a heartbeat).

        Returns:
            False when the task is not running under ``lease`` (None: any lease).
        """
        k = self.keys
        args: list[_Arg] = [k.prefix, task_id, lease or "", _ms(timeout)]
        return self._read("heartbeat", self._run("heartbeat", [k.processing], args), _boolean)

    def set_task_timeout(self, task_id: str, timeout: float, lease: str | None = None) -> bool:
        """:meth:`renew_lease` under the name the WorQ 1.1 manual gives it."""
        return self.renew_lease(task_id, timeout, lease)

    def get_status(self, task_id: str) -> TaskStatus | None:
        k = self.keys
        reply = self._run("status", [k.task(task_id), k.result(task_id), k.processing], [task_id])
        text = self._read("status", reply, lambda r: None if r is None else _bytes(r).decode())
        if text is None:
            return None
        try:
            return TaskStatus(text)
        except ValueError:  # something other than worq wrote the hash
            return None

    def set_result(
        self,
        task_id: str,
        message: bytes,
        timeout: float,
        lease: str | None = None,
        failure: FailureNote | None = None,
    ) -> bool:
        call = self._set_result_call(task_id, message, timeout, lease or "", failure)
        return self._read("set_result", self._run(call.script, call.keys, call.args), _boolean)

    def _set_result_call(
        self,
        task_id: str,
        message: bytes,
        timeout: float,
        lease: str,
        failure: FailureNote | None = None,
    ) -> _ScriptCall:
        """The set_result.lua call finishing ``task_id`` (``lease`` "": from outside)."""
        k = self.keys
        request = _Request()
        keys = [
            k.task(task_id), k.result(task_id), k.deps(task_id), k.processing,
            k.queue, k.delayed, k.deferred, k.request(request.token),
        ]  # fmt: skip
        args: list[_Arg] = [
            k.prefix, task_id, message, _ms(timeout), lease, request, self._replay_ms,
            time.time_ns() // 1_000_000,
        ]  # fmt: skip
        if failure is not None:
            args += [encode_note(failure), failure.limit, _ms(failure.keep_for)]
        return _ScriptCall("set_result", keys, args)

    def set_result_and_get(
        self, task_id: str, message: bytes, timeout: float, lease: str, wait: float = 0.0
    ) -> tuple[bool, Taken | None]:
        """set_result.lua and get.lua pipelined: one round trip (both retried as one).

        With a ``wait``, a BLMOVE between them waits up to that long for a task
        to come into the queue, and get.lua takes what it moved (see
        :meth:`_finish_and_wait`).
        """
        finish = self._set_result_call(task_id, message, timeout, lease)
        with self._request(f"get@{threading.get_ident()}") as request:
            if wait > 0:
                stored, got = self._finish_and_wait(finish, self._get_call(request, "1"), wait)
            else:
                stored, got = self._run_pipelined([finish, self._get_call(request, "")])
        taken, _ = self._read("get", got, _read_get)
        return self._read("set_result", stored, _boolean), taken

    def _finish_and_wait(self, finish: _ScriptCall, take: _ScriptCall, wait: float) -> list[Any]:
        """``finish`` (set_result.lua), a BLMOVE from the queue to the claimed list of
        up to ``wait`` seconds, and ``take`` (get.lua on the claimed list) in one round
        trip; the replies of the two scripts.

        The outcome is stored before the wait begins, so its waiter hears of it
        at once. A script that did not answer (the round trip was cut, or it
        was refused with NOSCRIPT or MOVED, or the wait was cut by UNBLOCKED)
        is sent again by :meth:`_run_pipelined`, marked retried: set_result.lua
        answers what it did, and get.lua hands back what its request took or
        takes from the claimed list what the BLMOVE moved, as after a cut
        wait of :meth:`_wait_and_get`.
        """
        k = self.keys
        commands: list[Command] = [
            self._evalsha(finish),
            ("BLMOVE", k.queue, k.claimed, "RIGHT", "LEFT", wait),
            self._evalsha(take),
        ]
        try:
            stored, moved, got = self._route.node()[1].run(commands)
        except _PERSISTENT as exc:
            raise self._error(exc) from exc
        except redis.exceptions.RedisError as exc:
            if not _cut(exc):
                raise self._error(exc) from exc
            stored = moved = got = exc
        if isinstance(moved, RedisError):
            if not _cut(moved):  # WRONGTYPE: the queue's key holds something else
                raise self._error(moved) from moved
            got = moved  # the wait was cut: take again, marked retried
        replies: list[Any] = [stored, got]
        unanswered: list[int] = []
        for i, reply in enumerate(replies):
            if isinstance(reply, RedisError):
                if not _refused(reply):
                    raise self._error(reply) from reply
                unanswered.append(i)
        if unanswered:
            if any(isinstance(replies[i], _TRANSIENT) for i in unanswered):
                self._route.turned_away()
            calls = [(finish, take)[i] for i in unanswered]
            for call in calls:
                for request in call.requests:
                    request.retried = True
            for i, reply in zip(unanswered, self._run_pipelined(calls), strict=True):
                replies[i] = reply
        return replies

    def retry_task(self, task_id: str, lease: str, delay: float) -> bool:
        k = self.keys
        args: list[_Arg] = [k.prefix, task_id, lease, _delay_ms(delay), _Request()]
        return self._read("retry", self._run("retry", [k.processing], args), _boolean)

    def reclaim(self, limit: int) -> list[Taken]:
        return self._reclaim(limit, "")

    def reclaim_task(self, task_id: str) -> Taken | None:
        taken = self._reclaim(1, task_id)
        return taken[0] if taken else None

    def _reclaim(self, limit: int, task_id: str) -> list[Taken]:
        k = self.keys
        lease_ms = _ms(self.initial_lease)
        key = f"reclaim:{task_id}" if task_id else f"reclaim@{threading.get_ident()}"
        with self._request(key) as request:
            keys = [k.processing, k.claimed, k.claimed_since, k.queue, k.request(request.token)]
            args: list[_Arg] = [k.prefix, limit, lease_ms, task_id, self._replay_ms, request]
            reply = self._run("reclaim", keys, args)
        return self._read("reclaim", reply, _read_reclaim)

    def pop_result(self, task_id: str, timeout: float | None) -> bytes | TaskStatus | None:
        with self._request(f"pop_result:{task_id}") as request:
            return self._pop_result(request, task_id, timeout)

    def pop_call(self, task_id: str, request: _Request, notify: str = "") -> _ScriptCall:
        """The pop_result.lua call taking ``task_id``'s result under ``request``'s token.

        Args:
            notify: A pub/sub channel to be told on when the result is stored
                (an async client's); "" for none.
        """
        k = self.keys
        keys = [k.result(task_id), k.task(task_id), k.processing, k.taken(request.token)]
        return _ScriptCall("pop_result", keys, [task_id, self._replay_ms, request, notify])

    def _pop_result(
        self, request: _Request, task_id: str, timeout: float | None
    ) -> bytes | TaskStatus | None:
        call = self.pop_call(task_id, request)
        result_key = call.keys[0]
        deadline = Deadline(timeout)
        reply = self._run(call.script, call.keys, call.args)
        while True:
            outcome = self._read("pop_result", reply, _read_pop)
            if not isinstance(outcome, int):
                return outcome
            now = time.monotonic()
            if deadline.passed(now):
                return None
            block = deadline.capped(_longest_block([outcome]), now)
            _, reply = self._wait_on(result_key, max(block, 0.01), call)
            if reply is None:
                reply = self._run(call.script, call.keys, call.args)

    def pop_results(
        self, task_ids: Sequence[str], timeout: float | None
    ) -> dict[str, bytes | TaskStatus]:
        """Poll the missing results in pipelined round trips of :data:`BATCH_SIZE`, block on
        the first one still missing, and poll again.

        Each task's result is taken by pop_result.lua under a token of its
        own, kept across the polls, so a lost reply never loses or doubles
        a result (see :meth:`pop_result`). The wait without a round trip per
        task: a BLMOVE on the first missing result's list, woken when that
        one arrives and capped by the nearest lease deadline of the tasks
        polled (so a lapse is seen at once) and by :data:`MAX_BLOCK`. Each
        poll covers only the first few missing results, about twice as many
        as the last poll found (results arrive roughly in the order tasks
        were sent): polling all of them each time a result arrives would
        cost a script call per task per arrival, and a first poll of all of
        them, right after they were sent, mostly finds nothing (three
        commands a miss). While every result polled is there the next ones
        are polled at once; when the wait for the first one ends without it,
        or the time is up, the next poll covers all (a timeout of 0 polls
        all at once).
        """
        unique = list(dict.fromkeys(task_ids))
        with contextlib.ExitStack() as stack:
            requests = {
                task_id: stack.enter_context(self._request(f"pop_result:{task_id}"))
                for task_id in unique
            }
            return self._pop_results(requests, timeout)

    def _pop_results(
        self, requests: dict[str, _Request], timeout: float | None
    ) -> dict[str, bytes | TaskStatus]:
        found: dict[str, bytes | TaskStatus] = {}
        missing = list(requests)
        deadline = Deadline(timeout)
        window = len(missing) if deadline.passed() else BATCH_SIZE
        lapsed = last = False
        while missing:
            polled, rest = missing[:window], missing[window:]
            calls = [self.pop_call(task_id, requests[task_id]) for task_id in polled]
            waits: list[int] = []
            still: list[str] = []
            for task_id, reply in zip(polled, self._run_pipelined(calls), strict=True):
                outcome = self._read("pop_result", reply, _read_pop)
                if isinstance(outcome, int):
                    still.append(task_id)
                    waits.append(outcome)
                else:
                    found[task_id] = outcome
                    lapsed = lapsed or outcome is TaskStatus.LAPSED
            missing = still + rest
            window = min(BATCH_SIZE, max(1, 2 * (len(polled) - len(still))))
            now = time.monotonic()
            if not missing or lapsed or last:
                break
            if deadline.passed(now):
                if not rest:  # each one looked at since its last wait
                    break
                window, last = len(missing), True  # a last look at all of them
                continue
            if not still:
                continue  # every polled result was there: poll the next ones at once
            block = deadline.capped(_longest_block(waits), now)
            first = self.keys.result(missing[0])
            came, _ = self._wait_on(first, max(block, 0.01))
            if not came:
                window = len(missing)  # the first one is slow: look at all of them again
        return found

    def register_schedules(self, schedules: Sequence[tuple[str, ScheduleState]]) -> None:
        k = self.keys
        args: list[_Arg] = []
        for name, state in schedules:
            args += [name, state.definition, _state_text(state)]
        self._run("schedule_register", [k.schedules, k.schedule_state], args)

    def schedule_states(
        self, alive_until_ms: int | None = None
    ) -> tuple[dict[str, ScheduleState], int]:
        k = self.keys
        mark = "" if alive_until_ms is None else str(alive_until_ms)
        reply = self._run(
            "schedule_states", [k.schedules, k.schedule_state, k.schedulers_alive], [mark]
        )
        return self._read("schedule_states", reply, _read_schedule_states)

    def fire_schedule(
        self, name: str, fire_ms: int, next_ms: int, task: NewTask | None, *, skip_running: bool
    ) -> FireResult:
        k = self.keys
        task_id = "" if task is None else task.task_id
        args: list[_Arg] = [
            k.prefix, name, str(fire_ms), str(next_ms), task_id,
            b"" if task is None else task.message,
            "0" if task is not None and not task.keep_result else "1",
            "0" if task is not None and not task.track else "1",
            "1" if skip_running else "0",
        ]  # fmt: skip
        keys = [k.schedule_state, k.task(task_id), k.result(task_id)]
        reply = self._run("schedule_fire", keys, args)
        return self._read("schedule_fire", reply, lambda r: FireResult(_bytes(r).decode()))

    def announce_pool(self, pool_id: str, record: bytes, ttl: float) -> None:
        k = self.keys
        ttl_ms = _ms(ttl) if ttl > 0 else 0
        self._run("pool_announce", [k.pools, k.pools_alive], [k.prefix, pool_id, record, ttl_ms])

    def live_pools(self) -> dict[str, bytes]:
        k = self.keys
        reply = self._run("live_pools", [k.pools, k.pools_alive], [k.prefix])
        return self._read("live_pools", reply, _read_pairs)

    def add_stats(self, counts: Mapping[tuple[int, str], int], keep_minutes: int) -> None:
        if not counts:
            return
        k = self.keys
        flat: list[_Arg] = [k.prefix, keep_minutes * 60_000]
        for (minute, field), count in counts.items():
            flat += [minute, field, count]
        self._run("stats_add", [k.stats(next(iter(counts))[0])], flat)

    def stats(self, first_minute: int, last_minute: int) -> dict[int, dict[str, int]]:
        k = self.keys
        args: list[_Arg] = [k.prefix, first_minute, last_minute]
        reply = cast(list[Any], self._run("stats_read", [k.stats(first_minute)], args))
        found: dict[int, dict[str, int]] = {}
        for i in range(0, len(reply), 2):
            flat = reply[i + 1]
            found[int(reply[i])] = {
                flat[j].decode(): int(flat[j + 1]) for j in range(0, len(flat), 2)
            }
        return found

    def inspect(self, task_id: str) -> TaskRecord | None:
        k = self.keys
        keys = [k.task(task_id), k.result(task_id), k.deps(task_id), k.failed_tasks]
        reply = cast(list[Any], self._run("inspect", keys, [task_id]))
        if not reply:
            return None
        status, message, attempt, started, worker, outcome, dependants, filed = reply
        record = TaskRecord(
            status=status.decode(), message=message, attempt=int(attempt),
            started_ms=int(started) if started else None, worker=worker.decode(),
            outcome=outcome[0] if outcome else None,
            dependants=tuple(sorted(d.decode() for d in dependants)),
            filed=read_filed(task_id, filed[0]) if filed else None,
        )  # fmt: skip
        return read_run(record, outcome[1]) if len(outcome) > 1 else record

    def next_in_line(self) -> tuple[str, bytes] | None:
        k = self.keys
        reply = cast(list[bytes], self._run("next_in_line", [k.queue], [k.prefix]))
        return (reply[0].decode(), reply[1]) if reply else None

    def file_failure(self, task_id: str, message: bytes, attempt: int, note: FailureNote) -> None:
        k = self.keys
        args: list[_Arg] = [
            k.prefix, task_id, message, attempt, encode_note(note), note.limit,
            _ms(note.keep_for),
        ]  # fmt: skip
        self._run("file_failure", [k.failed, k.failed_tasks], args)

    def failed_tasks(self, limit: int) -> list[FiledFailure]:
        k = self.keys
        reply = self._run("failed_tasks", [k.failed, k.failed_tasks], [k.prefix, limit])
        return self._read("failed_tasks", reply, _read_failed)

    def retry_failed(self, task_ids: Sequence[str] | None) -> list[tuple[str, RetryResult]]:
        k = self.keys
        which: list[_Arg] = ["all"] if task_ids is None else ["", *task_ids]
        reply = self._run("retry_failed", [k.failed, k.failed_tasks], [k.prefix, *which])
        flat = cast(list[bytes], reply)
        return [
            (flat[i].decode(), RetryResult(flat[i + 1].decode())) for i in range(0, len(flat), 2)
        ]

    def discard_failed(self, task_ids: Sequence[str] | None) -> list[str]:
        k = self.keys
        which: list[_Arg] = ["all"] if task_ids is None else ["", *task_ids]
        reply = self._run("discard_failed", [k.failed, k.failed_tasks], [k.prefix, *which])
        return [i.decode() for i in cast(list[bytes], reply)]

    def ping(self) -> bool:
        """True when the server answers.

        Raises:
            BackendUnavailable: It does not.
        """
        return bool(self._call(lambda: self.redis.ping()))

    def log_all_worq(self, show_expiring: bool = False) -> list[dict[str, Any]]:
        """Log (event ``redis.key``) and return every key of this queue: a debugging aid.

        Args:
            show_expiring: Include keys with a TTL (results waiting to be taken).
        """

        def listing() -> list[dict[str, Any]]:
            found = []
            client = self.redis
            for key in client.scan_iter(match=self.keys.pattern, count=500):
                ttl = client.pttl(key)
                if ttl >= 0 and not show_expiring:
                    continue
                kind = client.type(key)
                found.append(
                    {
                        "key": key.decode(),
                        "type": kind.decode() if isinstance(kind, bytes) else kind,
                        "ttl_ms": ttl,
                    }
                )
            return found

        found = self._call(listing)
        for entry in found:
            logger.info("redis.key", queue=self._name, **entry)
        return found

    def queue_names(self) -> list[str]:
        """Every queue with a key in this database, found by SCAN (never KEYS)."""

        def scan() -> set[str]:
            found = set()
            for client in self._route.masters():
                for key in client.scan_iter(match="worq:{*}:*", count=1000):
                    match = _QUEUE_OF_KEY.match(key)
                    if match is not None:
                        found.add(match.group(1).decode("utf-8", "backslashreplace"))
            return found

        return sorted(self._call(scan))

    def close(self) -> None:
        """Close the connections (a later call opens new ones)."""
        self._route.close()

    def __repr__(self) -> str:
        return f"<redis TaskQueue {self._masked_url} [{self._name}]>"


def _cut(exc: Exception) -> bool:
    """True for an error that cut a wait short without a word on the outcome: a
    transient one, or UNBLOCKED (the node blocking it became a replica)."""
    return isinstance(exc, _TRANSIENT) or (
        isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith("UNBLOCKED")
    )


def _refused(exc: Exception) -> bool:
    """True for an error that says nothing of a script's outcome, or that it did not
    run: a cut (see :func:`_cut`), or NOSCRIPT."""
    return _cut(exc) or isinstance(exc, redis.exceptions.NoScriptError)


def _longest_block(waits: Sequence[int]) -> float:
    """Seconds a waiter may block, from pop_result's "waiting" replies (ms until a
    lease deadline, -1 for a task not running): up to the nearest deadline, at
    most :data:`MAX_BLOCK`."""
    leases = [ms / 1000 + 0.01 for ms in waits if ms >= 0]
    return min([MAX_BLOCK, *leases])


def _ms(seconds: float) -> int:
    """A timeout in milliseconds; never 0, which Redis reads as "no timeout"."""
    return max(1, round(seconds * 1000))


def _delay_ms(seconds: float) -> int:
    """A delay in milliseconds; 0 means runnable now."""
    return max(0, round(seconds * 1000))


# Reading script replies. Each reader raises TypeError or ValueError for a
# reply of the wrong shape, which TaskQueue._read turns into a WorqError.


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return value


def _integer(value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _boolean(value: object) -> bool:
    if _integer(value) not in (0, 1):
        raise ValueError(f"expected 0 or 1, got {value!r}")
    return value == 1


def _read_stored(reply: object) -> DeferResult:
    """An enqueue reply as a DeferResult."""
    return DeferResult.STORED if _boolean(reply) else DeferResult.DUPLICATE


def _read_defer(reply: object) -> DeferResult:
    return DeferResult(_bytes(reply).decode())


def _integers(reply: object) -> tuple[int, int]:
    first, second = cast(Sequence[object], reply)
    return _integer(first), _integer(second)


def _taken(task_id: object, message: object, attempt: object, lease: object) -> Taken:
    return Taken(
        _bytes(task_id).decode("utf-8", "backslashreplace"),
        _bytes(message),
        _integer(attempt),
        _bytes(lease).decode(),
    )


class _Waiting:
    """The connections blocked in get()'s wait, so that interrupt_waits can unblock them.

    ``epoch`` counts interrupts: a get that began before one returns None
    instead of waiting again. Each connection's server-side client id is
    learnt once, and forgotten when the connection reconnects.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self._lock = threading.Condition()
        self._blocked: set[int] = set()
        self._ids: weakref.WeakKeyDictionary[AbstractConnection, int] = weakref.WeakKeyDictionary()

    def client_id(self, conn: AbstractConnection) -> int | None:
        with self._lock:
            return self._ids.get(conn)

    def remember(self, conn: AbstractConnection, client_id: int) -> int:
        with self._lock:
            if conn not in self._ids:
                conn.register_connect_callback(self._forget)  # type: ignore[no-untyped-call]  # untyped in redis-py
            self._ids[conn] = client_id
        return client_id

    def _forget(self, conn: AbstractConnection) -> None:
        with self._lock:
            self._ids.pop(conn, None)

    def enter(self, client_id: int, epoch: int) -> bool:
        """Register a wait about to start; False (do not wait) if interrupted meanwhile."""
        with self._lock:
            if self.epoch != epoch:
                return False
            self._blocked.add(client_id)
            return True

    def leave(self, client_id: int) -> None:
        with self._lock:
            self._blocked.discard(client_id)
            self._lock.notify_all()

    def still_blocked(self, timeout: float) -> list[int]:
        """The ids still in a wait after giving them up to ``timeout`` seconds to leave."""
        with self._lock:
            if self._blocked:
                self._lock.wait(timeout)
            return list(self._blocked)

    def interrupt(self) -> list[int]:
        """Start a new epoch; the client ids blocked now, to unblock."""
        with self._lock:
            self.epoch += 1
            return list(self._blocked)


def _read_failed(reply: object) -> list[FiledFailure]:
    """A failed_tasks reply: ids and registry entries (a JSON line, then the message)."""
    pairs = _read_pairs(reply)
    return [read_filed(task_id, entry) for task_id, entry in pairs.items()]


def _read_pairs(reply: object) -> dict[str, bytes]:
    """A flat list of names and values (argument ids and results, pool ids and records)."""
    flat = cast(list[bytes], reply)
    return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}


def _state_text(state: ScheduleState) -> str:
    """A schedule's state as schedule_state.lua stores it: "<last> <next> <task id>"."""
    return f"{state.last_ms} {state.next_ms} {state.task_id}"


def _read_schedule_states(reply: object) -> tuple[dict[str, ScheduleState], int]:
    """A schedule_states reply: the states by name, and the schedulers' alive mark."""
    alive, definitions, states = cast(Sequence[Any], reply)
    found: dict[str, ScheduleState] = {}
    defined = {definitions[i]: _bytes(definitions[i + 1]) for i in range(0, len(definitions), 2)}
    for i in range(0, len(states), 2):
        name = _bytes(states[i])
        last, next_ms, task_id = _bytes(states[i + 1]).decode().split(" ", 2)
        found[name.decode()] = ScheduleState(
            defined.get(name, b"{}"), int(last), int(next_ms), task_id
        )
    return found, int(_bytes(alive))


def _read_get(reply: object) -> tuple[Taken | None, int]:
    """A get reply: (the task taken, 0), or (None, ms until a delayed task is due; -1 none)."""
    kind, *rest = cast(Sequence[object], reply)
    if kind == b"task":
        task_id, message, attempt, lease = rest
        return _taken(task_id, message, attempt, lease), 0
    if kind == b"garbage":
        (task_id,) = rest
        return _taken(task_id, b"", 0, b""), 0
    if kind == b"none":
        (wait_ms,) = rest
        return None, _integer(wait_ms)
    raise ValueError(f"unknown reply kind {kind!r}")


def _read_reclaim(reply: object) -> list[Taken]:
    flat = list(cast(Sequence[object], reply))
    if len(flat) % 4:
        raise ValueError("not a list of (id, message, attempt, lease)")
    return [_taken(*flat[i : i + 4]) for i in range(0, len(flat), 4)]


def _read_pop(reply: object) -> bytes | TaskStatus | int:
    """A pop_result reply: the result, a status, or (waiting) ms until the lease deadline."""
    state, *rest = cast(Sequence[object], reply)
    if state == b"ready":
        (message,) = rest
        return _bytes(message)
    if state == b"expired" and not rest:
        return TaskStatus.EXPIRED
    if state == b"lapsed" and not rest:
        return TaskStatus.LAPSED
    if state == b"waiting":
        (lease_left_ms,) = rest
        return _integer(lease_left_ms)
    raise ValueError(f"unknown state {state!r}")
