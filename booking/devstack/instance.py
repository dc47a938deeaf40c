"""One ``booking dev`` per data directory, and who it is when a second one starts.

The running stack holds an exclusive ``flock`` on ``<data dir>/booking-dev.lock``
for its whole life and writes its pid and ports into the file. The kernel drops the
lock when the process ends, however it ends (even ``kill -9``), so a held lock always
means a live stack and a left-over file never blocks the next start. That is what
lets a second ``make run`` beside a running one say "already running here" rather
than list the ports the first one holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from booking.devstack.errors import DevStackError
from booking.devstack.ports import PortNeed

LOCK_FILE = "booking-dev.lock"


class StackAlreadyRunningError(DevStackError):
    """Another ``booking dev`` runs on the same data directory."""


class StackLock:
    """The lock of one data directory; held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self, ports: Sequence[PortNeed]) -> None:
        """Take the lock and record this process, or raise naming the running stack."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened without truncating: the running stack's record must survive our look.
        handle = os.fdopen(
            os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), "r+", encoding="utf-8"
        )
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            record = _parse(handle.read())
            handle.close()
            raise StackAlreadyRunningError(_already_running(record, self.path.parent)) from None
        except BaseException:
            handle.close()
            raise
        record = {
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "ports": [
                {"service": need.service, "address": need.address, "setting": need.setting}
                for need in ports
            ],
        }
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(record))  # one write: a reader never sees half of it
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            self._file.truncate(0)
        self._file.close()  # closing drops the lock
        self._file = None


def _parse(text: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except ValueError:  # written by a stack that is just starting
        return {}
    return record if isinstance(record, dict) else {}


def _already_running(record: dict[str, Any], data_dir: Path) -> str:
    pid = record.get("pid")
    who = f"pid {pid}" if isinstance(pid, int) else "pid unknown"
    ports = record.get("ports")
    listening = ""
    if isinstance(ports, list) and ports:
        listening = "; " + ", ".join(
            f"{port.get('service')} on {port.get('address')}"
            for port in ports
            if isinstance(port, dict)
        )
    stop = f"Ctrl-C in its terminal, or kill {pid}" if isinstance(pid, int) else "Ctrl-C"
    return (
        f"the booking stack is already running here ({who}, data in {data_dir}{listening}). "
        f"Use it, or stop it first ({stop}); a second stack beside it needs its own "
        "BOOKING_DATA_DIR and ports"
    )
