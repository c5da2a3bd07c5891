"""Queue backends: :mod:`worq.queue.memory` and :mod:`worq.queue.redis`."""
