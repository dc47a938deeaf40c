"""``booking dev`` end to end: every service up, demo data and tokens usable, clean
stop, and nothing left behind when it is killed hard."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from booking.devstack.ports import free_port, is_port_free
from tests.e2e.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="lists child processes through /proc"),
]


def _parent_of(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _children_of(pid: int) -> list[int]:
    return [
        int(stat.parent.name)
        for stat in Path("/proc").glob("[0-9]*/stat")
        if _parent_of(stat) == pid
    ]


def _descendants_of(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        children = _children_of(pending.pop())
        found += children
        pending += children
    return found


def _command_of(pid: int) -> bytes:
    """The process's name as ``ps`` shows it (PostgreSQL's helpers rename themselves)."""
    try:
        return Path(f"/proc/{pid}/comm").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    """Running; a zombie waiting for init to reap it holds nothing and counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _stack_env(service_dir: Path) -> dict[str, str]:
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("BOOKING_")},
        "BOOKING_DATA_DIR": str(service_dir / "data"),
        "BOOKING_POSTGRES_PORT": str(free_port()),
        "BOOKING_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "BOOKING_TEMPORAL_UI_PORT": str(free_port()),
        "BOOKING_API_PORT": str(free_port()),
        "BOOKING_TEMPORAL_TASK_QUEUE": "dev-stack-test",
    }


def _ports(env: dict[str, str]) -> list[int]:
    return [
        int(env["BOOKING_POSTGRES_PORT"]),
        int(env["BOOKING_TEMPORAL_ADDRESS"].rpartition(":")[2]),
        int(env["BOOKING_TEMPORAL_UI_PORT"]),
        int(env["BOOKING_API_PORT"]),
    ]


@asynccontextmanager
async def _running_stack(
    service_dir: Path, env: dict[str, str], *args: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``booking dev`` started and up (its banner read); killed at the end if still there."""
    log_path = service_dir / "stderr.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "booking.cli", "dev", *args),
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        assert process.stdout is not None
        banner = ""
        try:
            async with asyncio.timeout(120):
                while "Press Ctrl-C" not in banner:
                    line = await process.stdout.readline()
                    if not line:
                        break
                    banner += line.decode()
            assert "Press Ctrl-C" in banner, log_path.read_text()[-3000:]
            yield process, banner
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_dev_stack_starts_serves_and_stops_cleanly(service_dir: Path) -> None:
    env = _stack_env(service_dir)
    async with _running_stack(service_dir, env, "--demo") as (process, banner):
        children = _children_of(process.pid)
        assert len(children) == 5, "the watchdog, PostgreSQL, Temporal, worker and API"

        base = f"http://127.0.0.1:{env['BOOKING_API_PORT']}"
        assert f"API docs      {base}/docs" in banner
        learner = re.search(r"learner .*\n\s+Authorization: Bearer (\S+)", banner)
        assert learner is not None
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/readyz")).status_code == 200
            response = await http.get(
                "/v1/service-types", headers={"Authorization": f"Bearer {learner.group(1)}"}
            )
        assert response.status_code == 200, response.text
        assert "Career guidance" in response.text

        # The banner's Temporal CLI commands, run as printed, reach this stack's server.
        shown = re.search(r"Temporal CLI  (.+)\n\s+(.+)\n", banner)
        assert shown is not None, banner
        wrapper, plain = shown.group(1), shown.group(2)
        assert "booking temporal workflow list" in wrapper
        assert f"--address {env['BOOKING_TEMPORAL_ADDRESS']}" in plain
        for command in (wrapper, plain):
            cli = await asyncio.create_subprocess_exec(
                *shlex.split(command),
                cwd=REPO_ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(30):
                _, cli_stderr = await cli.communicate()
            assert cli.returncode == 0, (command, cli_stderr.decode())

        # A second `make run` beside this one recognises it instead of listing ports.
        second = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "booking.cli", "dev"),
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            _, second_stderr = await second.communicate()
        assert second.returncode == 1
        assert (
            f"the booking stack is already running here (pid {process.pid}"
            in second_stderr.decode()
        )

        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            code = await process.wait()
    assert code == 0, (service_dir / "stderr.log").read_text()[-3000:]
    assert not [pid for pid in children if _alive(pid)], "no service outlives booking dev"


def _walkthrough_script() -> str:
    """The shell blocks of the README's walkthrough, in order, as a reader would paste them."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## A consultation, end to end", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL))


async def test_the_readme_walkthrough_runs_as_written_on_moved_ports(service_dir: Path) -> None:
    env = _stack_env(service_dir)
    async with _running_stack(service_dir, env, "--demo") as (process, banner):
        api = f"http://127.0.0.1:{env['BOOKING_API_PORT']}"
        # What the walkthrough asks of a reader whose API is not on port 8000.
        script = _walkthrough_script().replace("API=http://127.0.0.1:8000", f"API={api}", 1)
        assert f"API={api}" in script
        script += '\necho "walked: request=$REQUEST session=$SESSION"\n'
        script += (
            'echo "mentoring: held=$MENTOR_START next=$(mentoring | get items 0 start_time)"\n'
        )
        walk = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            script,
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(180):
            raw_out, raw_err = await walk.communicate()
        out, err = raw_out.decode(), raw_err.decode()
        assert "Traceback" not in err, err
        walked = re.search(r"walked: request=(\S+) session=(\S+)", out)
        assert walked is not None, (out[-2000:], err[-2000:])
        # Step 7: once a mentoring session is held, Maria's day is at its cap of one.
        mentoring = re.search(r"mentoring: held=(\S+) next=(\S+)", out)
        assert mentoring is not None, (out[-2000:], err[-2000:])
        held, following = (datetime.fromisoformat(value) for value in mentoring.groups())
        berlin = ZoneInfo("Europe/Berlin")
        local = held.astimezone(berlin)
        assert (local.hour, local.minute) == (9, 15)  # the buffer before fits from 09:05
        assert following.astimezone(berlin).date() > held.astimezone(berlin).date()
        # The no-show asked for days early is refused, and shown as the problem it is.
        assert "409 Not possible in the current state: The session is scheduled." in err

        operator = re.search(r"operator .*\n\s+Authorization: Bearer (\S+)", banner)
        assert operator is not None, banner
        headers = {"Authorization": f"Bearer {operator.group(1)}"}
        async with httpx.AsyncClient(base_url=api, headers=headers) as http:
            request = (await http.get(f"/v1/consultation-requests/{walked.group(1)}")).json()
            session = (await http.get(f"/v1/sessions/{walked.group(2)}")).json()
        assert (request["status"], request["status_reason"]) == (
            "cancelled",
            "cancelled_by_requester",
        )
        assert session["status"] == "cancelled_by_user"
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            assert await process.wait() == 0


async def test_a_killed_dev_stack_leaves_no_process_and_no_port_behind(
    service_dir: Path,
) -> None:
    env = _stack_env(service_dir)
    async with _running_stack(service_dir, env) as (process, _):
        started = _descendants_of(process.pid)
        postgres = [pid for pid in started if _command_of(pid).startswith(b"postgres")]
        assert len(postgres) > 1, "PostgreSQL's own processes are among them"
        process.send_signal(signal.SIGKILL)
        await process.wait()
        killed_at = time.monotonic()

        async def left() -> dict[str, list[int]]:
            return {
                "processes": [pid for pid in started if _alive(pid)],
                "ports": [port for port in _ports(env) if not is_port_free("127.0.0.1", port)],
            }

        await wait_until(
            left,
            lambda still: not still["processes"] and not still["ports"],
            within=20,
            what="every process gone and every port free",
            every=0.1,
        )
    assert time.monotonic() - killed_at < 20
    assert "every service has stopped" in (service_dir / "stderr.log").read_text()
