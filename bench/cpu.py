"""CPU time of the stack's processes (and their children), from ``/proc``.

What each part of the stack spent during a phase, as a share of one core: the
evidence for what bounds a figure on a machine of few cores. Linux only; elsewhere
every reading is empty.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of it and its reaped children), None if it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces: the fields follow its closing parenthesis.
    fields = raw[raw.rindex(")") + 2 :].split()
    # utime, stime, and cutime, cstime: children already exited and reaped (a
    # PostgreSQL backend of a closed connection) count with their parent.
    return int(fields[1]), sum(int(value) for value in fields[11:15]) / TICKS


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process with its descendants (but not the
    descendants that are named themselves)."""
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                parents[int(entry.name)], seconds[int(entry.name)] = found
    children: dict[int, list[int]] = defaultdict(list)
    for pid, parent in parents.items():
        children[parent].append(pid)
    named = set(roots.values())
    totals: dict[str, float] = {}
    for name, root in roots.items():
        stack, total = [root], 0.0
        while stack:
            pid = stack.pop()
            total += seconds.get(pid, 0.0)
            # A child that is named itself (the stack's servers under the benchmark
            # process) counts under its own name only.
            stack.extend(child for child in children.get(pid, ()) if child not in named)
        totals[name] = total
    return totals


def core_shares(
    before: dict[str, float], after: dict[str, float], wall_s: float
) -> dict[str, float]:
    """Each process's CPU over a phase as a share of one core (1.0 = a core busy)."""
    if wall_s <= 0:
        return {}
    return {name: round((after[name] - before.get(name, 0.0)) / wall_s, 3) for name in after}
