"""Fixtures shared by the whole suite.

``url`` is parametrized over every backend, so a behaviour test written once
runs against each of them. Redis tests use a private redis-server started for
the session (or WORQ_TEST_REDIS_URL); a missing redis-server fails the run,
it never skips the backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

import pytest
import redis

from tests.redis_server import external_url
from worq.testing import RedisCluster, RedisServer

BACKENDS = ["memory", "redis"]

_memory_stores = itertools.count()


class _Startable(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=_Startable)


@contextmanager
def _running(make: Callable[[], S]) -> Iterator[S]:
    """``make()``, started, then stopped; a missing binary fails the tests, never skips them."""
    try:
        server = make()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the session's Redis server."""
    url = external_url()
    if url is not None:
        yield url
        return
    with _running(lambda: RedisServer(tmp_path_factory.mktemp("redis"))) as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """The session's Redis Cluster: 3 masters and 3 replicas, started on first use.

    Without redis-server or redis-cli the tests using it fail; they never skip.
    """
    with _running(lambda: RedisCluster(tmp_path_factory.mktemp("redis-cluster"))) as cluster:
        yield cluster


@pytest.fixture
def clean_redis_url(redis_url: str) -> str:
    """The session's Redis URL with its database emptied before the test."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_url


@pytest.fixture
def clean_cluster_url(redis_cluster: RedisCluster) -> str:
    """The session's Redis Cluster URL, every master emptied before the test."""
    redis_cluster.flush()
    return redis_cluster.url


def backend_url(request: pytest.FixtureRequest, backend: str) -> str:
    """A URL of an empty backend of the kind named: "memory", "redis" or "redis-cluster"."""
    if backend in ("redis", "redis-cluster"):
        fixture = "clean_redis_url" if backend == "redis" else "clean_cluster_url"
        found: str = request.getfixturevalue(fixture)
        return found
    return f"memory://test-{next(_memory_stores)}"


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> str:
    """A URL of an empty task queue backend, fresh for each test."""
    return backend_url(request, request.param)
