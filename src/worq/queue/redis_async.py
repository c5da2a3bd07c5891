"""The async client's Redis backend: the same scripts and keys, through ``redis.asyncio``.

It sends tasks and waits for results; workers are the pools' business. Two
connections serve any number of concurrent calls of one queue:

- **commands**: every script call joins the next pipelined round trip, so
  10,000 concurrent ``await``s cost about ten round trips, not 10,000
  connections. One round trip is in flight at a time; calls made meanwhile
  gather for the next one (at most :data:`~worq.queue.redis.BATCH_SIZE`).
- **notifications**: a wait that finds no result yet asks pop_result.lua to
  mark the task, and set_result.lua then publishes the task's id on this
  client's own channel; the wait wakes on that message, and looks again
  after :data:`RECHECK` seconds or at the task's lease deadline in any case
  (a lapsed lease, a discarded task, a message lost with a connection).

The script calls, request tokens, retries after lost replies and reply
checks are those of :class:`worq.queue.redis.TaskQueue`, which this class
holds as its sync twin and also uses, in a thread, for the rare calls an
async client makes outside these (see ``worq.aio``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis.asyncio
import redis.asyncio.retry
import redis.exceptions
from redis.backoff import NoBackoff

from worq._deadline import Deadline
from worq._events import logger
from worq.const import DEFAULT, TaskStatus
from worq.queue import redis as sync_redis
from worq.queue._redis_connections import pack
from worq.queue.redis import (
    _TRANSIENT,
    BATCH_SIZE,
    _bytes,
    _read_defer,
    _read_pop,
    _read_stored,
    _ScriptCall,
)
from worq.typing import DeferResult, NewTask

__all__ = ["RECHECK", "AsyncTaskQueue"]


RECHECK = 2.0
"""Longest a wait for a result goes without looking at the task again."""

_RESUBSCRIBE_PAUSE = 0.1
"""Seconds between attempts to subscribe again after the channel's connection broke."""


class AsyncTaskQueue:
    """Redis backend of ``worq.aio`` queues; see :class:`worq.typing.AsyncTaskQueue`.

    Args:
        url, name: As for :class:`worq.queue.redis.TaskQueue`.

    Raises:
        ValueError: The URL is malformed (the message masks any password).
    """

    def __init__(self, url: str, name: str = DEFAULT) -> None:
        self.sync = sync_redis.TaskQueue(url, name)
        """The sync twin: builds the script calls, reads their replies, and makes
        the rare calls this client makes in a thread."""
        self._channel = self.sync.keys.notify(sync_redis._TOKENS.next())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bound: _Connections | None = None

    @property
    def url(self) -> str:
        return self.sync.url

    @property
    def name(self) -> str:
        return self.sync.name

    def _connections(self) -> _Connections:
        """This loop's connections: made on first use; after :meth:`close`, on the next.

        Raises:
            RuntimeError: The queue is used from two running loops at once, or
                from a new loop while still open on one that ended.
        """
        loop = asyncio.get_running_loop()
        if self._bound is not None and self._loop is loop:
            return self._bound
        if self._bound is not None and self._loop is not None:
            where = f"async queue {self.name!r} at {self.sync._masked_url}"
            if self._loop.is_running():
                raise RuntimeError(
                    f"{where} is used from two running event loops at once: make one "
                    "queue per loop (worq.aio.get_queue in each)"
                )
            raise RuntimeError(
                f"{where} is used again after the event loop it ran on "
                f"{'closed' if self._loop.is_closed() else 'stopped'} without closing it: "
                "its connections belong to that loop; close the queue before its loop ends "
                "(async with worq.aio.get_queue(...) as aq: ..., or await aq.aclose())"
            )
        self._loop, self._bound = loop, _Connections(self)
        return self._bound

    async def _run_all(self, calls: Sequence[_ScriptCall]) -> list[Any]:
        """Run script calls, each in the next pipelined round trip; their replies."""
        return await self._connections().run(calls)

    async def enqueue_task(
        self, task_id: str, message: bytes, *, keep_result: bool, track: bool, delay: float = 0
    ) -> bool:
        (stored,) = await self.enqueue_tasks([NewTask(task_id, message, keep_result, track, delay)])
        return stored is DeferResult.STORED

    async def defer_task(
        self, task_id: str, message: bytes, argument_ids: Sequence[str], *, keep_result: bool
    ) -> DeferResult:
        task = NewTask(task_id, message, keep_result, True, 0, tuple(argument_ids))
        (stored,) = await self.enqueue_tasks([task])
        return stored

    async def enqueue_tasks(self, tasks: Sequence[NewTask]) -> list[DeferResult]:
        sync = self.sync
        with contextlib.ExitStack() as stack:
            calls = [
                sync._store_call(task, stack.enter_context(sync._request(sync._store_key(task))))
                for task in tasks
            ]
            replies = await self._run_all(calls)
        return [
            sync._read(call.script, reply, _read_defer if call.script == "defer" else _read_stored)
            for call, reply in zip(calls, replies, strict=True)
        ]

    async def get_status(self, task_id: str) -> TaskStatus | None:
        k = self.sync.keys
        call = _ScriptCall("status", [k.task(task_id), k.result(task_id), k.processing], [task_id])
        (reply,) = await self._run_all([call])
        text = self.sync._read("status", reply, lambda r: None if r is None else _bytes(r).decode())
        try:
            return None if text is None else TaskStatus(text)
        except ValueError:  # something other than worq wrote the hash
            return None

    async def pop_result(self, task_id: str, timeout: float | None) -> bytes | TaskStatus | None:
        """Take the result, waiting up to ``timeout`` seconds (None: forever) without polling.

        A wait cancelled (its coroutine, or a ``wait_for`` around it) leaves
        its request for the next wait on the same task from this client:
        a result the cancelled call took is handed to that one.
        """
        sync = self.sync
        with sync._request(f"pop_result:{task_id}") as request:
            call = sync.pop_call(task_id, request, self._channel)
            connections = self._connections()
            deadline = Deadline(timeout)
            with connections.watching(task_id) as told:
                connections.listen()
                try:
                    while True:
                        (reply,) = await connections.run([call])
                        outcome = sync._read("pop_result", reply, _read_pop)
                        if not isinstance(outcome, int):
                            return outcome
                        now = time.monotonic()
                        if deadline.passed(now):
                            return None
                        block = deadline.capped(_next_look(outcome), now)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(told.wait(), max(block, 0.001))
                        told.clear()
                except asyncio.CancelledError:
                    request.retried = True  # its reply may have taken the result
                    raise

    async def close(self) -> None:
        """Close this loop's connections (the sync twin's too)."""
        bound, self._bound, self._loop = self._bound, None, None
        if bound is not None:
            await bound.close()
        self.sync.close()

    def __repr__(self) -> str:
        return f"<redis AsyncTaskQueue {self.sync._masked_url} [{self.name}]>"


def _next_look(lease_left_ms: int) -> float:
    """Seconds a wait may go without looking: up to the lease deadline, at most RECHECK."""
    if lease_left_ms < 0:
        return RECHECK
    return min(RECHECK, lease_left_ms / 1000 + 0.01)


class _Connections:
    """One event loop's two connections of an :class:`AsyncTaskQueue` (see the module)."""

    def __init__(self, owner: AsyncTaskQueue) -> None:
        self._owner = owner
        self._redis: redis.asyncio.Redis | None = None
        self._learning = asyncio.Lock()
        self._conn: Any = None
        self._pending: list[tuple[_ScriptCall, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._busy = False
        """A round trip is in flight (the flusher's or a caller's own)."""
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def run(self, calls: Sequence[_ScriptCall]) -> list[Any]:
        """Each call's reply, sent in the next pipelined round trip (retried as redis.py does).

        With no round trip in flight, the caller sends its calls itself, at
        once; else they wait for the flusher task, which sends whatever
        gathered in the next one. A caller cancelled in its own round trip
        leaves the connection closed (redis-py closes it when a read is cut,
        so no reply is ever read by the wrong call) and hands what gathered
        meanwhile to a flusher.
        """
        if not (self._busy or self._pending) and len(calls) <= BATCH_SIZE:
            self._busy = True
            try:
                return await self._send(calls)
            finally:
                self._busy = False
                self._start_flusher()
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in calls]
        self._pending += zip(calls, futures, strict=True)
        if not self._busy:
            self._start_flusher()
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    def _start_flusher(self) -> None:
        if self._pending and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            chunk, self._pending = self._pending[:BATCH_SIZE], self._pending[BATCH_SIZE:]
            live = [(call, future) for call, future in chunk if not future.done()]
            self._busy = True
            try:
                replies = await self._send([call for call, _ in live])
            except Exception as exc:
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            finally:
                self._busy = False
            for (_, future), reply in zip(live, replies, strict=True):
                if not future.done():
                    future.set_result(reply)

    async def _send(self, calls: Sequence[_ScriptCall]) -> list[Any]:
        """One chunk, retried after connection errors under the same requests (see redis.py)."""
        requests = [request for call in calls for request in call.requests]
        retrying = sync_redis.Retrying(self._owner.sync, requests)
        while True:
            try:
                return await self._send_once(calls)
            except redis.exceptions.RedisError as exc:
                delay = retrying.after(exc)
                if isinstance(exc, _TRANSIENT) and self._owner.sync.clustered:
                    await self._turned_away()
                await asyncio.sleep(delay)

    async def _send_once(self, calls: Sequence[_ScriptCall]) -> list[Any]:
        """One pipelined round trip by SHA; scripts the server lost are loaded and sent again.

        Written to the flusher's own connection, held for the loop's life,
        without a redis-py Pipeline: what it adds (a connection taken from
        the pool and given back, command stacks) costs more than the round
        trip's own Python work for a call or two.
        """
        scripts = self._owner.sync._scripts
        conn = await self._command_connection()
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):
            commands = [self._owner.sync._evalsha(calls[i]) for i in todo]
            await conn.send_packed_command(pack(commands), check_health=False)
            unloaded: list[int] = []
            failed: redis.exceptions.ResponseError | None = None
            for i in todo:
                try:
                    replies[i] = await conn.read_response()
                except redis.exceptions.NoScriptError:
                    unloaded.append(i)
                except redis.exceptions.ResponseError as exc:  # read on: the others replied
                    failed = failed or exc
            if failed is not None:
                raise failed
            if not unloaded:
                return replies
            for name in {calls[i].script for i in unloaded}:  # on this connection too
                await conn.send_packed_command(
                    pack([("SCRIPT", "LOAD", scripts[name].source)]), check_health=False
                )
                await conn.read_response()
            todo = unloaded
        raise redis.exceptions.NoScriptError("scripts vanished again right after loading them")

    async def _client(self) -> redis.asyncio.Redis:
        """The client of the server (on a cluster, of the node) holding the queue.

        On a cluster, the sync twin's route learns the node, in a thread (it
        may ask the cluster first).
        """
        async with self._learning:  # one client, however many ask at once
            if self._redis is None:
                sync = self._owner.sync
                url = await asyncio.to_thread(sync.node_url) if sync.clustered else sync.url
                # As the sync twin's client (see its comments): no redis-py retries,
                # no socket timeout; the URL's query options come first.
                self._redis = redis.asyncio.Redis.from_url(
                    url,
                    socket_connect_timeout=sync_redis.CONNECT_TIMEOUT,
                    socket_timeout=None,
                    retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
                )
            return self._redis

    async def _turned_away(self) -> None:
        """The node turned a round trip away (MOVED, a cut connection...): ask the
        route again, and connect afresh to whichever node serves the queue now."""
        self._owner.sync.turned_away()
        client, conn, self._redis, self._conn = self._redis, self._conn, None, None
        if conn is not None:
            await conn.disconnect()
        if client is not None:
            await client.aclose()

    async def _command_connection(self) -> Any:
        """The connection script calls go on, taken from the client's pool once.

        It is kept only while its client is the current one: the listener may
        turn the node away (a failover) while the connection is being made,
        closing that client, whose connection must then not be used or be
        handed back to the next client's pool at close.
        """
        while self._conn is None:
            client = await self._client()
            conn = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]  # untyped in redis-py
            if self._redis is client:
                self._conn = conn
            else:
                await conn.disconnect()
        return self._conn

    @contextlib.contextmanager
    def watching(self, task_id: str) -> Iterator[asyncio.Event]:
        """An Event set whenever this client is told ``task_id``'s outcome was stored."""
        told = asyncio.Event()
        self._watchers.setdefault(task_id, set()).add(told)
        try:
            yield told
        finally:
            watchers = self._watchers.get(task_id)
            if watchers is not None:
                watchers.discard(told)
                if not watchers:
                    del self._watchers[task_id]

    def listen(self) -> None:
        """Make sure the channel's listener runs (it starts on first use).

        A wait need not wait for the subscription: once subscribed, the
        listener wakes every waiter, which then looks again.
        """
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        """Wake the waiters of each task id published on the channel, for ever.

        A broken connection is subscribed again; every waiter is then woken to
        look again, since what was published meanwhile is lost.
        """
        channel = self._owner._channel
        while True:
            try:
                pubsub = (await self._client()).pubsub()
            except _TRANSIENT:
                await asyncio.sleep(_RESUBSCRIBE_PAUSE)
                continue
            try:
                await pubsub.subscribe(channel)
                await pubsub.get_message(timeout=None)  # the subscription's confirmation
                self._wake_all()  # what was published before it is lost: look again
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None and message["type"] == "message":
                        task_id = _bytes(message["data"]).decode("utf-8", "backslashreplace")
                        for told in self._watchers.get(task_id, ()):
                            told.set()
            except _TRANSIENT as exc:
                logger.warning(
                    "client.notifications_cut", queue=self._owner.name, error=str(exc),
                    retry_in_s=_RESUBSCRIBE_PAUSE,
                )  # fmt: skip
                if self._owner.sync.clustered:  # the node may be gone: ask for the new one
                    await self._turned_away()
                await asyncio.sleep(_RESUBSCRIBE_PAUSE)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _wake_all(self) -> None:
        for watchers in self._watchers.values():
            for told in watchers:
                told.set()

    async def close(self) -> None:
        for task in (self._listener, self._flusher):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        client, conn, self._redis, self._conn = self._redis, self._conn, None, None
        if client is not None:
            if conn is not None:
                await client.connection_pool.release(conn)
            await client.aclose()
