"""The watchdog stops what a dead supervisor started, even what ignores its signal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from booking.devstack.watchdog import KILL_WAIT, Watchdog
from tests.e2e.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
GRACE = 1.0

# Ignores SIGTERM, like a service stuck in its shutdown, and forks two processes that
# ignore it too: one stays in its process group, one leaves it with setsid() as
# PostgreSQL's backends do. It writes the three pids to the file named by argv[1].
STUBBORN_SERVICE = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pids = [os.getpid()]
for leave_group in (False, True):
    pid = os.fork()
    if pid == 0:
        if leave_group:
            os.setsid()
        time.sleep(300)
        os._exit(0)
    pids.append(pid)
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(" ".join(map(str, pids)))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)
"""


def _supervisor(start: str) -> str:
    """A supervisor that starts the watchdog, then the service (argv[1] run with
    argv[2]) with ``start``, tells the watchdog, prints its pid and waits."""
    return f"""
import signal, subprocess, sys, time
from booking.devstack.processes import spawn
from booking.devstack.watchdog import Watchdog
watchdog = Watchdog(grace={GRACE})
watchdog.start()
service = {start}([sys.executable, "-c", sys.argv[1], sys.argv[2]])
watchdog.watch(service.pid, signal.SIGTERM, "the service")
print(watchdog.pid, flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    """Running; a zombie waiting to be reaped holds nothing and counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="checks processes through /proc")
async def test_a_killed_supervisor_leaves_nothing_running(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    service: list[int] = []
    # Spawned as booking dev spawns: the parent-death signal comes, and is ignored.
    supervisor = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", _supervisor("spawn"), STUBBORN_SERVICE, str(pids_file)),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert supervisor.stdout is not None
        assert supervisor.stderr is not None
        watchdog_pid = int(await supervisor.stdout.readline())
        pids = await wait_until(
            lambda: asyncio.to_thread(lambda: pids_file.exists() and pids_file.read_text()),
            bool,
            within=20,
            what="the service's pids",
        )
        service = [int(pid) for pid in str(pids).split()]
        supervisor.send_signal(signal.SIGKILL)
        await supervisor.wait()

        async def running() -> list[int]:
            return [pid for pid in [*service, watchdog_pid] if _alive(pid)]

        await wait_until(running, lambda left: not left, within=GRACE + KILL_WAIT + 10)
        said = (await supervisor.stderr.read()).decode()
    finally:
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()
        for pid in service:  # whatever the watchdog missed must not outlive the test
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert "stopping the service" in said
    assert "killing 3 process(es) that did not stop within 1 s" in said
    assert "every service has stopped" in said


def test_a_released_watchdog_leaves_the_services_alone() -> None:
    watchdog = Watchdog(grace=GRACE)
    watchdog.start()
    service = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        watchdog.watch(service.pid, signal.SIGTERM, "a service")
        watchdog_pid = watchdog.pid
        assert watchdog_pid is not None
        watchdog.release()  # returns once the watchdog has exited
        assert not _alive(watchdog_pid)
        assert service.poll() is None, "an orderly stop is the supervisor's own business"
    finally:
        service.kill()
        service.wait()


async def test_a_service_that_stops_on_its_signal_is_not_killed(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    service = (
        "import signal, sys, time\n"
        "def stop(signum, frame):\n"
        "    open(sys.argv[1], 'w').write('cleanly')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    supervisor = await asyncio.create_subprocess_exec(
        # Without a parent-death signal (as on systems other than Linux), the
        # watchdog's signal is the only one the service gets.
        *(sys.executable, "-c", _supervisor("subprocess.Popen"), service, str(marker)),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert supervisor.stdout is not None
        assert supervisor.stderr is not None
        # The service shares the supervisor's output: its "ready" and the watchdog's pid.
        lines = {(await supervisor.stdout.readline()).strip() for _ in range(2)}
        lines.discard(b"ready")
        watchdog_pid = int(lines.pop())
        supervisor.send_signal(signal.SIGKILL)
        await supervisor.wait()
        async with asyncio.timeout(GRACE + KILL_WAIT + 10):
            said = await supervisor.stderr.read()  # open until the watchdog has finished
    finally:
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()

    async def watchdog_running() -> bool:
        return _alive(watchdog_pid)

    # It closed its output on the way out; being gone follows a moment later.
    await wait_until(watchdog_running, lambda running: not running, within=10)
    assert marker.read_text() == "cleanly"
    assert b"stopping the service" in said
    assert b"every service has stopped" in said
    assert b"killing" not in said
