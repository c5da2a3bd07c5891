"""What the benchmarks read of their processes in /proc (Linux)."""

from __future__ import annotations

import os

__all__ = ["cpu_seconds"]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user and system) the processes used so far, with that of the children
    they reaped (a process that exits moves its time into its parent's); a process
    gone meanwhile counts nothing (its parent counts it once it reaps it)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")
