"""Child-process plumbing shared by the local services.

Every service runs in its own process group so that a Ctrl-C typed in the terminal
reaches only ``booking dev``, which then stops the services in order (API and worker
before Temporal and PostgreSQL). On Linux each child also gets a parent-death signal,
its stop signal the moment its parent goes; ``booking dev`` backs that with its
watchdog (``watchdog.py``), which also kills what does not stop and what the services
forked themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import IO, Any

import httpx

from booking.devstack.errors import DevStackError

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@cache
def _prctl() -> Any:
    # Resolved in the parent: loading a library between fork and exec could deadlock.
    return ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive ``sig`` when its parent exits.

    Linux delivers the signal when the *thread* that forked exits, so services are
    spawned from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = _prctl()
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


def spawn(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    output: IO[bytes] | int | None = None,
    user: int | None = None,
    group: int | None = None,
    on_parent_death: signal.Signals = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start a service in its own process group; ``output`` receives stdout and stderr
    (a file, ``subprocess.DEVNULL``, or ``None`` to share ours).

    ``user``/``group`` switch identity (only meaningful when running as root), with
    supplementary groups dropped so the child keeps none of root's.
    """
    return subprocess.Popen(  # noqa: S603  (argument lists built by this package, no shell)
        list(args),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        process_group=0,
        user=user,
        group=group,
        extra_groups=[] if user is not None else None,
        preexec_fn=_die_with_parent(on_parent_death),
    )


def stop_process(
    process: subprocess.Popen[bytes],
    *,
    name: str,
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = 20.0,
) -> int:
    """Ask a service to stop with ``sig``; kill its whole group if it does not in time."""
    if process.poll() is not None:
        return process.returncode
    try:
        process.send_signal(sig)
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop within %.0f s; killing it", name, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until_ready(
    url: str,
    *,
    what: str,
    timeout: float,
    still_running: Callable[[], None],
    poll: float = 0.2,
    hint: str = "",
) -> None:
    """Poll ``url`` (a readiness endpoint) until it answers 200.

    ``still_running`` raises when the process that should answer has died, so a crash
    is reported at once rather than after ``timeout``. On timeout the last answer or
    error is in the ``DevStackError``, after ``hint`` (where to look).
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        still_running()
        try:
            response = httpx.get(url, timeout=2.0)
        except httpx.HTTPError as error:
            last = str(error) or type(error).__name__
        else:
            if response.status_code == httpx.codes.OK:
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        time.sleep(poll)
    raise DevStackError(f"{what} did not become ready within {timeout:.0f} s ({last}){hint}")
