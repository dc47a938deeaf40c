"""The watchdog: stops every service of ``booking dev`` when ``booking dev`` dies.

A ``kill -9`` of the supervisor skips all its clean-up. Linux's parent-death signal
(see ``processes.spawn``) tells its direct children, but it exists on Linux only, it
fires when the *thread* that forked exits, nothing follows up when a service does not
stop on it, and it does not reach what the services forked themselves (PostgreSQL's
backends and helpers each call ``setsid``, leaving its process group).

So ``booking dev`` first starts this small process, in a process group of its own,
with the read end of a pipe as its standard input, and tells it each service it
starts ("watch <pid> <signal> <name>"). Only the supervisor holds the write end, so
the pipe reaches end-of-file exactly when the supervisor is gone, however it went.
After an orderly stop the supervisor says "release" first and the watchdog just
exits. Otherwise it:

1. notes every process each service has forked (through ``/proc``),
2. sends each service its stop signal (PostgreSQL's fast shutdown, SIGTERM for the
   others) and waits up to ``grace`` seconds for all of those processes to end,
3. kills whatever is left (each service's process group, and each noted process).

Processes are held by pidfd where the system has them, so a pid reused by an
unrelated process in the meantime is never signalled.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

DEFAULT_GRACE = 10.0
"""How long services get to stop on their signal before they are killed."""

KILL_WAIT = 5.0
"""How long to wait for killed processes to be gone before giving up on them."""

RELEASE = "release"


class Watchdog:
    """The supervisor's side: starts the watchdog process and tells it what to watch."""

    def __init__(self, *, grace: float = DEFAULT_GRACE) -> None:
        self.grace = grace
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: IO[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        read_end, write_end = os.pipe()  # neither end is inherited by other children
        try:
            self._process = subprocess.Popen(  # noqa: S603  (this interpreter, fixed module)
                [sys.executable, "-m", __name__, "--grace", str(self.grace)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                # Its own group: the terminal's Ctrl-C must not reach it.
                process_group=0,
            )
        finally:
            os.close(read_end)
        self._pipe = os.fdopen(write_end, "w", encoding="utf-8")

    def watch(self, pid: int, stop_signal: signal.Signals, name: str) -> None:
        self._send(f"watch {pid} {int(stop_signal)} {name}")

    def release(self) -> None:
        """Every service is stopped: let the watchdog go without touching anything."""
        if self._pipe is None:
            return
        with contextlib.suppress(OSError):
            self._send(RELEASE)
        with contextlib.suppress(OSError):
            self._pipe.close()
        self._pipe = None
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def _send(self, line: str) -> None:
        assert self._pipe is not None, "start the watchdog first"
        self._pipe.write(line + "\n")
        self._pipe.flush()


# -- the watchdog process ------------------------------------------------------


@dataclass
class _Process:
    """One process to stop, held by pidfd where the system offers one."""

    pid: int
    pidfd: int | None = None

    @classmethod
    def open(cls, pid: int) -> _Process | None:
        """``None`` when the process has already gone."""
        if not hasattr(os, "pidfd_open"):
            return cls(pid) if _exists(pid) else None
        try:
            return cls(pid, os.pidfd_open(pid))
        except ProcessLookupError:
            return None
        except OSError:  # no pidfd support in this kernel
            return cls(pid) if _exists(pid) else None

    def running(self) -> bool:
        if self.pidfd is not None:
            # A pidfd becomes readable once its process has ended.
            readable, _, _ = select.select([self.pidfd], [], [], 0)
            return not readable
        return _exists(self.pid)

    def send(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, sig)
            else:
                os.kill(self.pid, sig)


@dataclass
class _Service:
    name: str
    stop_signal: int
    process: _Process
    forked: list[_Process] = field(default_factory=list)

    def every_process(self) -> list[_Process]:
        return [self.process, *self.forked]


def _exists(pid: int) -> bool:
    """Alive and not a zombie (a zombie holds no port and no file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (empty where there is no ``/proc``)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(parent, []).append(int(stat.parent.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found += children
        pending += children
    return found


def _say(message: str) -> None:
    # The terminal may be gone with the supervisor; the stopping matters, not the note.
    with contextlib.suppress(OSError):
        print(f"booking dev watchdog: {message}", file=sys.stderr, flush=True)


def _wait_until_ended(processes: list[_Process], timeout: float) -> list[_Process]:
    """Those still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    running = [process for process in processes if process.running()]
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = [process for process in running if process.running()]
    return running


def stop_services(services: list[_Service], grace: float) -> list[_Service]:
    """Signal, wait, kill; returns the services with a process that would not end."""
    for service in services:
        service.forked = [
            process
            for process in map(_Process.open, _descendants(service.process.pid))
            if process is not None
        ]
    for service in services:
        _say(f"stopping {service.name} (pid {service.process.pid})")
        service.process.send(service.stop_signal)
    everything = [process for service in services for process in service.every_process()]
    left = _wait_until_ended(everything, grace)
    if left:
        _say(f"killing {len(left)} process(es) that did not stop within {grace:.0f} s")
        for service in services:
            if service.process.running():
                # Its group holds what it forked without leaving the group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(service.process.pid, signal.SIGKILL)
        for process in left:
            process.send(signal.SIGKILL)
        left = _wait_until_ended(left, KILL_WAIT)
    stuck = {process.pid for process in left}
    return [
        service
        for service in services
        if any(process.pid in stuck for process in service.every_process())
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE)
    options = parser.parse_args(argv)
    # Not ours to obey: only the end of the pipe means "stop the services".
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    supervisor = os.getppid()

    services: list[_Service] = []
    for line in sys.stdin:
        words = line.split(maxsplit=3)
        if words == [RELEASE]:
            return 0
        if len(words) == 4 and words[0] == "watch":
            process = _Process.open(int(words[1]))
            if process is not None:
                services.append(_Service(words[3].strip(), int(words[2]), process))
    # End of file without "release": the supervisor is gone.
    running = [service for service in services if service.process.running()]
    if not running:
        return 0
    _say(f"booking dev (pid {supervisor}) is gone; stopping what it started")
    stuck = stop_services(running, options.grace)
    if stuck:
        _say(f"could not stop: {', '.join(service.name for service in stuck)}")
        return 1
    _say("every service has stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
