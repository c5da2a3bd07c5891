"""The Redis Cluster the tests start for themselves (the cluster backend's ground).

A real cluster of six ``redis-server --cluster-enabled yes`` processes on
loopback ports, joined by ``redis-cli --cluster create``: no mock and no
single-node stand-in.
"""

from __future__ import annotations

import redis
import redis.cluster

from worq.testing import RedisCluster


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
