"""CPU-seconds of processes a bench started, from Linux's /proc (utime + stime of /proc/<pid>/stat)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU-seconds a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_s(pid: int) -> float:
    """CPU-seconds of a process and of its descendants still running (a server and its workers)."""
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        total += cpu_s(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
    return total
