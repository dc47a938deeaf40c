"""``booking dev`` end to end: every service up, demo data and tokens usable, clean stop."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sys
from pathlib import Path

import httpx
import pytest

from booking.devstack.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="lists child processes through /proc")
async def test_dev_stack_starts_serves_and_stops_cleanly(service_dir: Path) -> None:
    api_port = free_port()
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("BOOKING_")},
        "BOOKING_DATA_DIR": str(service_dir / "data"),
        "BOOKING_POSTGRES_PORT": str(free_port()),
        "BOOKING_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "BOOKING_TEMPORAL_UI_PORT": str(free_port()),
        "BOOKING_API_PORT": str(api_port),
        "BOOKING_TEMPORAL_TASK_QUEUE": "dev-stack-test",
    }
    log = (service_dir / "stderr.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "booking.cli", "dev", "--demo"),
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
        assert "Press Ctrl-C" in banner, (service_dir / "stderr.log").read_text()[-3000:]
        children = _children_of(process.pid)
        assert len(children) == 4, "PostgreSQL, Temporal, worker and API"

        base = f"http://127.0.0.1:{api_port}"
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
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()
    assert code == 0, (service_dir / "stderr.log").read_text()[-3000:]
    assert not [pid for pid in children if _alive(pid)], "no service outlives booking dev"
