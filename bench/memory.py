"""Resident memory of the stack's processes (and their children), from ``/proc``.

RSS (``VmRSS``): what a process holds in RAM now, shared library pages included, so
differences between two readings of the same process are what to look at. Linux
only; elsewhere every reading is ``None``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

PROC = Path("/proc")
MB = 1024 * 1024


def _rss_kb(pid: int) -> int | None:
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None  # gone meanwhile, or no /proc
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # a zombie or a kernel thread holds no resident memory


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": the command name may hold spaces.
        children[int(stat[stat.rindex(")") + 2 :].split()[1])].append(int(entry.name))
    return children


def rss_mb(root: int) -> float | None:
    """Resident memory of ``root`` and all its descendants, in MiB (``None``: gone)."""
    own = _rss_kb(root)
    if own is None:
        return None
    children = _children()
    total, pending = own, list(children.get(root, ()))
    while pending:
        pid = pending.pop()
        total += _rss_kb(pid) or 0
        pending += children.get(pid, ())
    return total * 1024 / MB
