"""Worker pools: :mod:`worq.pool.thread` (threads in this process)."""

from worq.typing import WorkerPool

__all__ = ["WorkerPool"]
