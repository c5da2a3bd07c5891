"""Worker pools: :mod:`worq.pool.thread` (threads in this process) and
:mod:`worq.pool.process` (spawned worker processes)."""

from worq.typing import WorkerPool

__all__ = ["WorkerPool"]
