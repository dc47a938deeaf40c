"""``booking worker`` as a child process: the real worker, killable like a real one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from core.settings import Settings
from tests.support.database import REPO_ROOT


def worker_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points ``booking worker`` at the test's database, Temporal
    server and task queue; ``extra`` adds or overrides ``BOOKING_*`` variables."""
    assert settings.jwt_secret is not None
    return {
        **os.environ,
        "BOOKING_ENVIRONMENT": "test",
        "BOOKING_JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "BOOKING_DATABASE_URL": settings.require_database_url(),
        "BOOKING_TEMPORAL_ADDRESS": settings.temporal_address,
        "BOOKING_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "BOOKING_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "BOOKING_LOG_LEVEL": "WARNING",
        "BOOKING_WEBHOOK_ALLOWED_TARGETS": ",".join(settings.webhook_allowed_targets),
        **extra,
    }


class WorkerProcess:
    """One ``python -m booking.cli worker`` at a time, started, killed and restarted
    on demand; its output is appended to ``log_file``."""

    def __init__(self, environment: Mapping[str, str], log_file: Path) -> None:
        self._env = dict(environment)
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exited_on_its_own(self) -> bool:
        """Started, not stopped by us, and no longer running."""
        return self._process is not None and self._process.poll() is not None

    def start(self) -> None:
        assert self._process is None, "already running"
        with self._log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "booking.cli", "worker"],
                env=self._env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, in-flight tasks are simply gone."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=10)
        self._process = None

    def reap(self) -> int | None:
        """Forget a worker that exited on its own; its exit status (None if running)."""
        if not self.exited_on_its_own:
            return None
        assert self._process is not None
        code = self._process.returncode
        self._process = None
        return code

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def log_tail(self, lines: int = 40) -> str:
        if not self._log_file.exists():
            return ""
        return "\n".join(self._log_file.read_text(errors="replace").splitlines()[-lines:])
