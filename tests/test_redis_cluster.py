"""The Redis Cluster the tests start for themselves (the cluster backend's ground).

A real cluster of six ``redis-server --cluster-enabled yes`` processes on
loopback ports, joined by ``redis-cli --cluster create``: no mock and no
single-node stand-in.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster

import worq.aio
from tests import process_tasks
from tests.test_cli import run
from worq import TaskSpace, WorqError, get_broker, wait_all
from worq.pool.asyncio import WorkerPool as AsyncioPool
from worq.pool.process import WorkerPool
from worq.queue.redis import TaskQueue
from worq.testing import WAIT, RedisCluster, eventually, free_port, thread_worker
from worq.typing import Taken


def test_the_cluster_has_three_masters_each_with_a_replica(redis_cluster: RedisCluster) -> None:
    host, port = redis_cluster.addresses[0]
    client = redis.cluster.RedisCluster(host=host, port=port)
    try:
        nodes = client.get_nodes()  # type: ignore[no-untyped-call]  # untyped in redis-py
        assert sorted(node.server_type for node in nodes) == ["primary"] * 3 + ["replica"] * 3
    finally:
        client.close()
    node = redis.Redis(host=host, port=port)
    try:
        # each entry: first slot, last slot, the master, then its replicas
        ranges = node.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]  # untyped in redis-py
        assert sum(entry[1] - entry[0] + 1 for entry in ranges) == 16384
        assert sorted(len(entry) - 3 for entry in ranges) == [1, 1, 1]
    finally:
        node.close()


def test_keys_of_different_hash_tags_land_on_different_masters(
    redis_cluster: RedisCluster,
) -> None:
    """Writes through the cluster client reach the master serving each key's slot."""
    host, port = redis_cluster.addresses[0]
    client = redis.cluster.RedisCluster(host=host, port=port)
    try:
        names = [f"worq:{{q{n}}}:probe" for n in range(12)]
        for name in names:
            client.set(name, b"1")
        holders = {
            client.get_node_from_key(name).name  # type: ignore[no-untyped-call]  # untyped in redis-py
            for name in names
        }
        assert len(holders) > 1
        assert all(client.get(name) == b"1" for name in names)
        client.delete(*names)
    finally:
        client.close()


# -- worq on the cluster --------------------------------------------------------


def test_named_queues_spread_over_the_masters(clean_cluster_url: str) -> None:
    """Each queue lives on the master of its hash tag's slot: a handful use more than one."""
    holders = set()
    for name in ["emails", "images", "reports", "billing", "search", "default"]:
        tq = TaskQueue(clean_cluster_url, name)
        assert tq.enqueue_task("t", b"m", keep_result=True, track=True)
        node = tq.redis.connection_pool.connection_kwargs
        holders.add(node["port"])
        assert tq.redis.exists(tq.keys.queue) == 1  # the whole queue is on that node
        tq.close()
    assert len(holders) > 1
    lister = TaskQueue(clean_cluster_url)
    assert lister.queue_names() == sorted(
        ["emails", "images", "reports", "billing", "search", "default"]
    )
    lister.close()


maths = TaskSpace("maths")


@maths.task
def add(a: int, b: int) -> int:
    return a + b


def test_tasks_and_deferred_arguments_run_on_the_cluster(clean_cluster_url: str) -> None:
    """The manual's dependency graph through a broker and a thread pool, on the cluster."""
    broker = get_broker(clean_cluster_url, "graphs")
    broker.expose(maths)
    client = get_broker(clean_cluster_url, "graphs")
    with thread_worker(broker, timeout=0.2):
        q = client.queue("maths")
        total = q.add(q.add(1, 2), q.add(3, 4))
        assert total.wait(WAIT)
        assert total.value == 10
        sums = q.starmap(add, [(1, n) for n in range(50)])  # pipelined, grouped by node
        assert not wait_all(sums, WAIT).not_done
        assert [d.value for d in sums] == [n + 1 for n in range(50)]
    client.close()
    broker.close()


def test_a_failover_is_followed_by_workers_and_waiters(
    redis_cluster: RedisCluster, clean_cluster_url: str
) -> None:
    """A replica takes over the queue's slot (CLUSTER FAILOVER) while a worker waits for a
    task and a client for a result: both follow the cluster to the new master, scripts
    are loaded there, and the task runs once."""
    tq = TaskQueue(clean_cluster_url, "moving")
    master = tq.redis.connection_pool.connection_kwargs["port"]
    client = TaskQueue(clean_cluster_url, "moving")
    taken: list[Taken | None] = []
    getter = threading.Thread(target=lambda: taken.append(tq.get(WAIT)))
    getter.start()
    eventually(lambda: _blocked_on(master), True)
    _fail_over(redis_cluster, master)
    assert client.enqueue_task("a", b"A", keep_result=True, track=True)
    getter.join(WAIT)
    assert [t.task_id if t else None for t in taken] == ["a"]
    assert taken[0] is not None
    assert tq.redis.connection_pool.connection_kwargs["port"] != master
    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.append(client.pop_result("a", WAIT)))
    waiter.start()
    assert tq.set_result("a", b"R", 60, taken[0].lease)
    waiter.join(WAIT)
    assert result == [b"R"]
    assert tq.size() == 0
    assert tq.get(0) is None
    tq.close()
    client.close()


def _blocked_on(port: int) -> bool:
    node = redis.Redis(port=port)
    try:
        return any(entry["cmd"] == "blmove" for entry in node.client_list())
    finally:
        node.close()


def _role(node: redis.Redis) -> str:
    role: str = node.info("replication")["role"]
    return role


def _fail_over(cluster: RedisCluster, master: int) -> None:
    """Promote the replica of the master on ``master`` (a manual, graceful failover)."""
    for host, port in cluster.addresses:
        node = redis.Redis(host=host, port=port)
        try:
            replication = node.info("replication")
            if replication["role"] == "slave" and replication["master_port"] == master:
                node.execute_command("CLUSTER", "FAILOVER")  # type: ignore[no-untyped-call]  # untyped in redis-py
                eventually(functools.partial(_role, node), "master")
                return
        finally:
            node.close()
    raise AssertionError(f"no replica of the master on port {master}")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://:s3cret@node-a", "seed node 'node-a' is not host:port"),
        ("redis+cluster://:s3cret@a:7000,,b:7001", "seed node '' is not host:port"),
        ("rediss+cluster://:s3cret@a:7000/2", "a cluster has only database 0, got 2"),
        ("redis+cluster://:s3cret@a:7000?db=1", "a cluster has only database 0, got 1"),
    ],
)
def test_a_malformed_cluster_url_is_refused_masked(url: str, says: str) -> None:
    with pytest.raises(ValueError, match="malformed Redis Cluster URL") as raised:
        get_broker(url)
    assert says in str(raised.value)
    assert "s3cret" not in str(raised.value)
    assert ":***@" in str(raised.value)


def test_seeds_user_password_and_query_options_reach_the_nodes(
    redis_cluster: RedisCluster, clean_cluster_url: str
) -> None:
    """Any seed that answers will do; the query options of redis:// apply to every node."""
    (down_host, down_port), (host, port) = ("127.0.0.1", free_port()), redis_cluster.addresses[1]
    url = f"redis+cluster://{down_host}:{down_port},{host}:{port}?socket_keepalive=true"
    tq = TaskQueue(url, "seeded")
    assert tq.enqueue_task("t", b"m", keep_result=True, track=True)
    assert tq.redis.connection_pool.connection_kwargs["socket_keepalive"] is True
    tq.close()


def test_a_server_not_in_cluster_mode_is_a_clear_error(clean_redis_url: str) -> None:
    netloc = clean_redis_url.split("//", 1)[1].split("/", 1)[0]
    tq = TaskQueue(f"redis+cluster://:s3cret@{netloc}", "plain")
    with pytest.raises(WorqError, match="is not in cluster mode") as raised:
        tq.size()
    message = str(raised.value)
    assert f"redis+cluster://:***@{netloc}" in message
    assert "s3cret" not in message
    assert "use redis://host:port for a single server" in message


def test_a_process_pool_and_the_command_line_run_on_the_cluster(
    clean_cluster_url: str, tmp_path: Path
) -> None:
    pool = WorkerPool(process_tasks.init(clean_cluster_url), process_tasks.init, workers=1)
    pool.start(timeout=0.2, handle_sigterm=False)
    client = get_broker(clean_cluster_url)
    try:
        q = client.queue()
        total = q.proc.add([q.proc.add([1, 2]), 3])
        assert total.wait(WAIT)
        assert total.value == 6
    finally:
        pool.stop()
        client.close()
    reports = get_broker(clean_cluster_url, "reports")
    reports.queue().proc.add([5, 6])
    reports.close()
    shown = run(tmp_path, "info", clean_cluster_url, "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert (info["backend"], info["ping"]) == ("redis", True)
    assert info["queues"] == {"default": 0, "reports": 1}  # scanned on every master


def test_the_async_client_follows_a_failover(
    redis_cluster: RedisCluster, clean_cluster_url: str
) -> None:
    """worq.aio on the cluster: sends and awaits on the queue's node, and after a
    failover (MOVED, then NOSCRIPT on the new master) on the new one."""
    broker = process_tasks.init(clean_cluster_url)
    pool = AsyncioPool(broker, concurrency=10)
    pool.start(timeout=0.1)
    master = _master_port(clean_cluster_url)

    async def sums(aq: Any, numbers: range) -> list[int]:
        deferreds = [await aq.submit(process_tasks.async_add, [n, n]) for n in numbers]
        return [await d for d in deferreds]

    async def scenario() -> tuple[list[int], list[int]]:
        async with worq.aio.get_queue(clean_cluster_url) as aq:
            before = await sums(aq, range(10))
            await asyncio.to_thread(_fail_over, redis_cluster, master)
            after = await sums(aq, range(10, 20))
            return before, after

    try:
        before, after = asyncio.run(scenario())
    finally:
        pool.stop()
        broker.close()
    assert before == [2 * n for n in range(10)]
    assert after == [2 * n for n in range(10, 20)]
    assert _master_port(clean_cluster_url) != master


def _master_port(url: str) -> int:
    tq = TaskQueue(url)
    try:
        port: int = tq.redis.connection_pool.connection_kwargs["port"]
        return port
    finally:
        tq.close()


def test_an_asyncio_pool_runs_async_tasks_on_the_cluster(clean_cluster_url: str) -> None:
    broker = process_tasks.init(clean_cluster_url)
    pool = AsyncioPool(broker, concurrency=10)
    pool.start(timeout=0.1)
    client = get_broker(clean_cluster_url)
    try:
        q = client.queue()
        sums = [q.proc.async_add([n, n]) for n in range(20)]
        assert not wait_all(sums, WAIT).not_done
        assert [d.value for d in sums] == [2 * n for n in range(20)]
    finally:
        pool.stop()
        client.close()
        broker.close()
