"""The Redis server every benchmark runs against."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from worq.testing import RedisServer

__all__ = ["redis_url"]


@contextmanager
def redis_url() -> Iterator[str]:
    """The benchmark's Redis: WORQ_BENCH_REDIS_URL or a private server."""
    url = os.environ.get("WORQ_BENCH_REDIS_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()
