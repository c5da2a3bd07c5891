"""Where one queue's keys live: a single Redis server, or a node of a Redis Cluster.

Every key of a queue shares one hash tag, so on a cluster one node, the
master serving the tag's slot, holds the whole queue. The task queue then
talks to that node as it would to a single server (its held connections,
its blocking waits, its scripts), and only asks the route again when the
node turns it away: a MOVED reply (the slot moved, or a replica took over)
or a connection error (the node may be gone). redis-py's ``RedisCluster``
keeps the map of slots to nodes; the queue's commands never go through its
command layer, whose retries would resend a script as a first attempt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import redis
import redis.cluster
import redis.exceptions

from worq.queue._redis_connections import HeldConnections

__all__ = ["ClusterRoute", "Route", "ServerRoute"]


class Route(Protocol):
    """The node serving one queue, for :class:`worq.queue.redis.TaskQueue`."""

    def node(self) -> tuple[redis.Redis, HeldConnections]:
        """A client of the node serving the queue (for its rare commands) and the
        connections held to it (for its script calls and waits).

        Raises:
            redis.exceptions.RedisError: The cluster could not be reached to learn it.
        """
        ...

    def turned_away(self) -> None:
        """The node refused a command (MOVED) or its connection broke: ask again
        which node serves the queue before the next command."""
        ...

    def masters(self) -> list[redis.Redis]:
        """A client of every node that holds data (to scan every queue's keys)."""
        ...

    def close(self) -> None:
        """Close every connection (a later call opens new ones)."""
        ...


class ServerRoute:
    """A single Redis server: always the same node.

    Args:
        client: The server's client.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._held = HeldConnections(client.connection_pool)

    def node(self) -> tuple[redis.Redis, HeldConnections]:
        return self._client, self._held

    def turned_away(self) -> None:
        """Nothing to learn: there is no other node."""

    def masters(self) -> list[redis.Redis]:
        return [self._client]

    def close(self) -> None:
        self._held.close()
        self._client.close()


class ClusterRoute:
    """The master of one slot of a Redis Cluster, learnt from the cluster and again
    whenever it turns the queue away.

    The cluster client is made on first use (making it asks the seed nodes
    for the slot map: I/O, which a constructor of worq's never does).

    Args:
        connect: Makes the cluster client.
        key: A key of the queue (any: they share one slot).
    """

    def __init__(self, connect: Callable[[], redis.cluster.RedisCluster], key: str) -> None:
        self._connect = connect
        self._key = key
        self._lock = threading.Lock()
        self._cluster: redis.cluster.RedisCluster | None = None
        self._current: tuple[redis.Redis, HeldConnections] | None = None
        self._stale = False
        self._held: dict[str, HeldConnections] = {}

    def node(self) -> tuple[redis.Redis, HeldConnections]:
        with self._lock:
            if self._current is not None:
                return self._current
            try:
                self._current = self._learn()
            except redis.exceptions.RedisClusterException as exc:
                # no node answered, or none serves the slot (mid-failover): an outage
                raise redis.exceptions.ConnectionError(str(exc)) from None
            return self._current

    def _learn(self) -> tuple[redis.Redis, HeldConnections]:
        """Ask the cluster which master serves the queue's slot (under the lock)."""
        cluster = self._cluster
        if cluster is None:
            cluster = self._cluster = self._connect()
        elif self._stale:
            cluster.nodes_manager.initialize()
        self._stale = False
        node = cluster.get_node_from_key(self._key)  # type: ignore[no-untyped-call]  # untyped in redis-py
        client = node.redis_connection or cluster.get_redis_connection(node)
        held = self._held.get(node.name)
        if held is None:
            held = self._held[node.name] = HeldConnections(client.connection_pool)
        return client, held

    def turned_away(self) -> None:
        with self._lock:
            self._current = None
            self._stale = True

    def masters(self) -> list[redis.Redis]:
        self.node()
        assert self._cluster is not None  # made by node()
        cluster = self._cluster
        return [
            node.redis_connection or cluster.get_redis_connection(node)
            for node in cluster.get_primaries()  # type: ignore[no-untyped-call]  # untyped in redis-py
        ]

    def close(self) -> None:
        with self._lock:
            held, self._held = list(self._held.values()), {}
            cluster, self._cluster, self._current = self._cluster, None, None
        for connections in held:
            connections.close()
        if cluster is not None:
            cluster.close()
