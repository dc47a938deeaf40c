"""A real CalDAV server for tests: Radicale, started on a loopback port the OS picked,
storing its collections in a temporary folder, with one user and a plain-text password
file so that clients authenticate as they would against Nextcloud or iCloud."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

CALDAV_USER = "consultant"
CALDAV_PASSWORD = "radicale-test-password"
START_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class CalDAVServer:
    base_url: str
    username: str
    password: str

    @property
    def principal_url(self) -> str:
        """Where a client starts discovering the user's calendars."""
        return f"{self.base_url}/{self.username}/"


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"radicale exited with code {process.returncode}")
        try:
            # Any answer (401 without credentials) means it is listening.
            httpx.get(f"{base_url}/", timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        return
    raise RuntimeError(f"radicale did not answer at {base_url} in {START_TIMEOUT_SECONDS} s")


@contextlib.contextmanager
def running_caldav_server(folder: Path) -> Iterator[CalDAVServer]:
    """Radicale serving ``folder`` until the block ends."""
    users = folder / "users"
    users.write_text(f"{CALDAV_USER}:{CALDAV_PASSWORD}\n")
    port = _free_loopback_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "radicale",
        "--server-hosts",
        f"127.0.0.1:{port}",
        "--storage-filesystem-folder",
        str(folder / "collections"),
        "--auth-type",
        "htpasswd",
        "--auth-htpasswd-filename",
        str(users),
        "--auth-htpasswd-encryption",
        "plain",
        "--logging-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_until_serving(base_url, process)
        yield CalDAVServer(base_url=base_url, username=CALDAV_USER, password=CALDAV_PASSWORD)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
