"""``python -m bench.workflow_load_probe --setup NAME --replays N``: the worker-side CPU
of loading a consultation workflow, measured by replaying its committed happy-path
history N times (each replay loads the workflow into a fresh sandbox, as a worker
does for every new workflow and every one evicted from its cache). Prints one JSON
line: CPU and wall milliseconds per load. The bytecode situation is the caller's
(environment variables), so each setup runs in a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.bytecode import keep_workflow_bytecode
from workflows.consultation import ConsultationWorkflow

HISTORY = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "workflows"
    / "histories"
    / "happy_path_until_scheduled.json"
)

SETUPS = ("source", "bytecode", "passthrough")
"""source: compiled from source on every load (PYTHONDONTWRITEBYTECODE, no cache);
bytecode: what the worker does (workflows.bytecode); passthrough: bytecode, and the
workflow package shared with the sandbox instead of re-imported (not used by the
service: it would lift the sandbox's checks from the workflow code)."""


def replayer(setup: str) -> Replayer:
    if setup == "passthrough":
        restrictions = SandboxRestrictions.default.with_passthrough_modules("workflows")
        runner = SandboxedWorkflowRunner(restrictions=restrictions)
        return Replayer(workflows=[ConsultationWorkflow], workflow_runner=runner)
    return Replayer(workflows=[ConsultationWorkflow])


async def measure(setup: str, replays: int) -> dict[str, float]:
    if setup != "source":
        keep_workflow_bytecode()
    history = WorkflowHistory.from_json("happy-path", HISTORY.read_text())
    runner = replayer(setup)
    await runner.replay_workflow(history)  # the first load also imports the SDK's parts
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(replays):
        await runner.replay_workflow(history)
    return {
        "cpu_ms_per_load": (time.process_time() - cpu) / replays * 1000,
        "wall_ms_per_load": (time.perf_counter() - wall) / replays * 1000,
        "history_events": float(len(json.loads(HISTORY.read_text())["events"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--setup", choices=SETUPS, required=True)
    parser.add_argument("--replays", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.setup, args.replays))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
