"""What ``booking dev`` checks before it starts anything: its ports and its data dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from booking.devstack.instance import LOCK_FILE, StackAlreadyRunningError, StackLock
from booking.devstack.local_settings import DevelopmentSettings
from booking.devstack.ports import free_port
from booking.devstack.stack import DevStack
from core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def _settings(
    data_dir: Path, *, api_port: int | None = None, temporal_port: int | None = None
) -> Settings:
    """Free ports everywhere, except the ones given."""
    return DevelopmentSettings(
        data_dir=data_dir,
        database_url=None,
        postgres_port=free_port(),
        temporal_address=f"127.0.0.1:{temporal_port or free_port()}",
        temporal_ui_port=free_port(),
        api_host="127.0.0.1",
        api_port=api_port or free_port(),
    )


def _run(settings: Settings) -> tuple[int, str]:
    said: list[str] = []
    code = DevStack(settings, say=said.append, show=said.append).run()
    return code, "\n".join(said)


def test_every_port_conflict_is_reported_in_one_run_before_anything_starts(
    tmp_path: Path, listener: socket.socket
) -> None:
    with socket.socket() as second:
        second.bind(("127.0.0.1", 0))
        second.listen()
        busy_api, busy_temporal = listener.getsockname()[1], second.getsockname()[1]
        settings = _settings(tmp_path, api_port=busy_api, temporal_port=busy_temporal)
        code, said = _run(settings)
    assert code == 1
    assert "2 ports not available" in said
    assert f"127.0.0.1:{busy_api}  the API (BOOKING_API_PORT)" in said
    assert f"127.0.0.1:{busy_temporal}  the Temporal server (BOOKING_TEMPORAL_ADDRESS)" in said
    assert "starting" not in said, "nothing may start while a port is taken"
    assert not (tmp_path / "postgres").exists()


def test_port_needs_cover_every_listener_and_skip_postgres_with_a_database_url(
    tmp_path: Path,
) -> None:
    embedded = DevStack(_settings(tmp_path))
    assert [need.setting for need in embedded.port_needs()] == [
        "BOOKING_POSTGRES_PORT",
        "BOOKING_TEMPORAL_ADDRESS",
        "BOOKING_TEMPORAL_UI_PORT",
        "BOOKING_API_PORT",
    ]
    external = _settings(tmp_path).model_copy(
        update={"database_url": "postgresql+asyncpg://someone@127.0.0.1:1/elsewhere"}
    )
    assert "BOOKING_POSTGRES_PORT" not in [need.setting for need in DevStack(external).port_needs()]


def test_a_second_stack_on_the_same_data_dir_names_the_running_one(
    tmp_path: Path, listener: socket.socket
) -> None:
    running = DevStack(_settings(tmp_path))
    lock = StackLock(running.data_dir)
    lock.acquire(running.port_needs())
    try:
        # Its API port is taken too (by the running stack, in real life): the answer
        # is about the stack, not a list of ports.
        code, said = _run(_settings(tmp_path, api_port=listener.getsockname()[1]))
    finally:
        lock.release()
    assert code == 1
    assert f"the booking stack is already running here (pid {os.getpid()}" in said
    assert f"the API on 127.0.0.1:{running.settings.api_port}" in said
    assert "not available" not in said


def test_the_lock_records_the_pid_and_ports_while_held(tmp_path: Path) -> None:
    stack = DevStack(_settings(tmp_path))
    lock = StackLock(stack.data_dir)
    lock.acquire(stack.port_needs())
    try:
        record = json.loads((stack.data_dir / LOCK_FILE).read_text())
        with pytest.raises(StackAlreadyRunningError):
            StackLock(stack.data_dir).acquire([])
    finally:
        lock.release()
    assert record["pid"] == os.getpid()
    assert {port["setting"] for port in record["ports"]} == {
        need.setting for need in stack.port_needs()
    }
    StackLock(stack.data_dir).acquire([])  # released: free for the next one


def test_a_killed_stack_leaves_no_lock_behind(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from booking.devstack.instance import StackLock; "
            "lock = StackLock(Path(sys.argv[1])); lock.acquire([]); print('held', flush=True); "
            "time.sleep(120)",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        with pytest.raises(StackAlreadyRunningError, match=f"pid {holder.pid}"):
            StackLock(tmp_path).acquire([])
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
    assert (tmp_path / LOCK_FILE).read_text(), "the dead stack's record is still there"
    lock = StackLock(tmp_path)
    lock.acquire([])  # yet the kernel dropped its lock with the process
    lock.release()
