"""workflow_load: the worker CPU it takes to load one consultation workflow.

A worker loads a workflow into a fresh sandbox for every new request and for every
one it has evicted from its cache (10,000 parked requests against a cache of
1,000 means a load for nearly every timer or message). Each setup replays the
committed happy-path history in a process of its own, so the bytecode situation
is exactly that setup's:

- source: PYTHONDONTWRITEBYTECODE and no bytecode, as in a container or on a
  machine that sets it, before the worker wrote its own (workflows/bytecode.py);
- bytecode: what the worker now does at start-up;
- passthrough: also sharing the workflow package with the sandbox instead of
  re-importing it per load. Measured to show what the sandbox's re-import costs;
  not used, because it would lift the sandbox's determinism checks from the
  workflow code.

CPU time of the replaying process, not wall time: it is what a load takes away
from everything else on the machine, and it is far less sensitive to the noise.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile

from bench.registry import BenchContext, scenario
from bench.results import Better, ScenarioResult
from bench.stack import REPO_ROOT
from bench.workflow_load_probe import SETUPS


def _environment(setup: str, cache_dir: str) -> dict[str, str]:
    environment = {**os.environ, "PYTHONPYCACHEPREFIX": cache_dir}
    if setup == "source":
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


async def _probe(setup: str, replays: int) -> dict[str, float]:
    # A cache directory per run: "source" must find no bytecode at all, the others
    # write theirs at start-up, like a worker on a fresh machine.
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache_dir:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.workflow_load_probe",
            "--setup",
            setup,
            "--replays",
            str(replays),
            cwd=REPO_ROOT,
            env=_environment(setup, cache_dir),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"workflow_load_probe {setup} failed: {err.decode()[-2000:]}")
    measured: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return measured


@scenario(
    "workflow_load",
    needs=set(),
    summary="worker CPU per workflow load: from source, with bytecode, passthrough",
)
async def run(ctx: BenchContext) -> ScenarioResult:
    result = ScenarioResult("workflow_load")
    replays = 5 if ctx.quick else 30
    result.config = {"replays_per_round": replays, "setups": list(SETUPS)}
    cpu: dict[str, list[float]] = {setup: [] for setup in SETUPS}
    wall: dict[str, list[float]] = {setup: [] for setup in SETUPS}
    events = 0.0
    for number in ctx.round_numbers():
        # Rotate the order so a drift of the machine favours no setup.
        order = SETUPS[number % len(SETUPS) :] + SETUPS[: number % len(SETUPS)]
        for setup in order:
            measured = await _probe(setup, replays)
            cpu[setup].append(measured["cpu_ms_per_load"])
            wall[setup].append(measured["wall_ms_per_load"])
            events = measured["history_events"]
        ctx.say(
            f"workflow_load: round {number}: CPU per load "
            + ", ".join(f"{s} {cpu[s][-1]:.1f} ms" for s in SETUPS)
        )
    for setup in SETUPS:
        result.figure(
            f"workflow_load.{setup}.cpu",
            f"CPU per workflow load, {setup}",
            "ms",
            cpu[setup],
            better=Better.LOWER,
        )
        result.figure(
            f"workflow_load.{setup}.wall",
            f"wall time per workflow load, {setup}",
            "ms",
            wall[setup],
            better=Better.LOWER,
        )
    result.ratio(
        "workflow_load.bytecode_vs_source",
        "bytecode / source (CPU)",
        "workflow_load.bytecode.cpu",
        "workflow_load.source.cpu",
        "share of a load's CPU left once the worker keeps the workflows' bytecode",
    )
    result.ratio(
        "workflow_load.passthrough_vs_bytecode",
        "passthrough / bytecode (CPU)",
        "workflow_load.passthrough.cpu",
        "workflow_load.bytecode.cpu",
        "share left if the sandbox did not re-import the workflow package (not adopted)",
    )
    result.check("every setup replayed the history", all(cpu.values()), f"{events:.0f} events")
    result.notes.append(
        f"Each load replays the committed happy-path history ({events:.0f} events) into a "
        "fresh sandbox in a process of its own; CPU time of that process."
    )
    return result
