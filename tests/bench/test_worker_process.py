"""How a benchmark worker process ends (bench/worker_process.py), in a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# argv[1]: "serve" ends normally, "fail" raises while running, "build" while building.
PROGRAM = """
import asyncio
import logging
import sys

from bench.worker_process import run_worker_process


async def work() -> None:
    await asyncio.sleep(0)
    if sys.argv[1] == "fail":
        raise RuntimeError("the task queue is gone")
    print("served", flush=True)


def build():
    if sys.argv[1] == "build":
        raise ValueError("no settings")
    return work()


run_worker_process(build, logging.getLogger("bench.demo"), "the demo worker")
print("not reached")
"""


def run_program(outcome: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, outcome],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_worker_that_ends_leaves_with_status_0() -> None:
    done = run_program("serve")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "served\n"
    assert "failed" not in done.stderr


def test_a_worker_that_raises_is_logged_and_leaves_with_status_1() -> None:
    failed = run_program("fail")
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert "the demo worker failed" in failed.stderr
    assert "RuntimeError: the task queue is gone" in failed.stderr


def test_an_error_while_building_the_worker_is_logged_too() -> None:
    failed = run_program("build")
    assert failed.returncode == 1
    assert "the demo worker failed" in failed.stderr
    assert "ValueError: no settings" in failed.stderr
