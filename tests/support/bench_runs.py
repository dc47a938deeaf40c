"""Quick benchmark runs for the bench tests: ``python -m bench --quick`` on a stack of
its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# A developer's running stack must not be picked up: the run starts its own.
STACK_VARIABLES = ("BOOKING_BENCH_API_URL", "BOOKING_DATABASE_URL", "BOOKING_TEMPORAL_ADDRESS")


def run_quick(
    scenarios: list[str], results: Path, *, rounds: int, timeout: float, module: str = "bench"
) -> None:
    """``python -m bench <scenarios> --quick`` on a stack of its own, into ``results``
    (``module``: a benchmark outside ``make bench`` with the same options)."""
    # A developer's running stack or tuning switches must not be picked up.
    env = {key: value for key, value in os.environ.items() if key not in STACK_VARIABLES}
    env.pop("BOOKING_BENCH_WORKFLOW_TASK_POLLS", None)
    env.pop("BOOKING_BENCH_SINGLE_PARTITION", None)
    command = [sys.executable, "-m", module, *scenarios, "--quick", "--rounds", str(rounds)]
    run = subprocess.run(
        [*command, "--results-dir", str(results)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
