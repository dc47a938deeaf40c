"""floor: what this Temporal server and worker can do at best, measured in this run.

Two reference workflows on their own task queue, served by one worker process
built with the service worker's options: an empty workflow, and one that runs five
no-op activities in sequence. Each round starts a batch of each (kinds alternating
first, so a drift of the machine does not favour one) with a bounded number in
flight, waits for every result, and reports completed workflows per second and the
start-to-result latency. Other scenarios divide their rates by these.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from bench.registry import BenchContext, scenario
from bench.results import Better, ScenarioResult
from bench.stack import Component
from bench.stats import latencies_ms
from bench.workloads import NOOP_ACTIVITIES, EmptyWorkflow, FiveNoopsWorkflow

ROUND_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class FloorParams:
    workflows: int
    concurrency: int
    warmup: int

    @classmethod
    def for_run(cls, quick: bool) -> FloorParams:
        if quick:
            return cls(workflows=20, concurrency=10, warmup=5)
        return cls(workflows=300, concurrency=50, warmup=100)


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    workflow: Any


KINDS = (
    Kind("empty", "empty workflow", EmptyWorkflow.run),
    Kind("five_noops", f"workflow of {NOOP_ACTIVITIES} no-op activities", FiveNoopsWorkflow.run),
)


@dataclass(frozen=True)
class RoundOutcome:
    rate: float
    latencies_ns: list[int]
    last_id: str


@dataclass(frozen=True)
class Batches:
    """Batches of reference workflows on one floor worker's task queue: ``concurrency``
    unfinished at a time, workflow ids ``<id_prefix>-<batch name>-<n>``."""

    client: Client
    task_queue: str
    concurrency: int
    id_prefix: str

    async def run(self, kind: Kind, count: int, name: str) -> RoundOutcome:
        """Start ``count`` workflows of ``kind`` and wait for every result."""
        id_prefix = f"{self.id_prefix}-{name}"
        numbers = iter(range(count))
        latencies: list[int] = []

        async def lane() -> None:
            for number in numbers:
                began = time.perf_counter_ns()
                await self.client.execute_workflow(
                    kind.workflow, id=f"{id_prefix}-{number}", task_queue=self.task_queue
                )
                latencies.append(time.perf_counter_ns() - began)

        began = time.perf_counter()
        async with asyncio.timeout(ROUND_TIMEOUT_S):
            await asyncio.gather(*(lane() for _ in range(min(self.concurrency, count))))
        elapsed = time.perf_counter() - began
        return RoundOutcome(count / elapsed, latencies, f"{id_prefix}-{count - 1}")


@scenario(
    "floor",
    needs={Component.TEMPORAL},
    summary="empty and five-no-op-activity workflows per second on this Temporal server",
)
async def run(ctx: BenchContext) -> ScenarioResult:
    params = FloorParams.for_run(ctx.quick)
    result = ScenarioResult("floor")
    task_queue = f"bench-floor-{ctx.run_id}"
    result.config = {
        "workflows_per_round": params.workflows,
        "in_flight": params.concurrency,
        "warmup_workflows": params.warmup,
        "activities": f"{NOOP_ACTIVITIES} no-op activities in sequence",
        "task_queue": task_queue,
        "worker": "one process (python -m bench.floor_worker), worker.py's options",
    }
    worker = ctx.stack.start_python(
        "floor worker", ["-m", "bench.floor_worker", "--task-queue", task_queue]
    )
    try:
        client = await ctx.stack.temporal_client()
        batches = Batches(client, task_queue, params.concurrency, f"bench-{ctx.run_id}-floor")
        rates: dict[str, list[float]] = {kind.key: [] for kind in KINDS}
        p50: dict[str, list[float]] = {kind.key: [] for kind in KINDS}
        p99: dict[str, list[float]] = {kind.key: [] for kind in KINDS}
        last_ids: dict[str, str] = {}
        completed = 0

        ctx.say(f"floor: warming up ({params.warmup} of each)")
        for kind in KINDS:
            worker.ensure_alive()
            await batches.run(kind, params.warmup, f"warmup-{kind.key}")
        for number in ctx.round_numbers():
            order = KINDS if number % 2 else tuple(reversed(KINDS))
            for kind in order:
                worker.ensure_alive()
                outcome = await batches.run(kind, params.workflows, f"{number}-{kind.key}")
                latency = latencies_ms(outcome.latencies_ns)
                rates[kind.key].append(outcome.rate)
                p50[kind.key].append(latency.p50)
                p99[kind.key].append(latency.p99)
                last_ids[kind.key] = outcome.last_id
                completed += len(outcome.latencies_ns)
                ctx.say(
                    f"floor: round {number} {kind.key}: {outcome.rate:.1f} workflows/s, "
                    f"p50 {latency.p50:.1f} ms, p99 {latency.p99:.1f} ms"
                )

        history_events: dict[str, int] = {}
        for kind in KINDS:
            history = await client.get_workflow_handle(last_ids[kind.key]).fetch_history()
            history_events[kind.key] = len(history.events)
    finally:
        ctx.stack.stop_child(worker)

    for kind in KINDS:
        result.figure(
            f"floor.{kind.key}.rate",
            f"{kind.label}: completed per second",
            "workflows/s",
            rates[kind.key],
            better=Better.HIGHER,
        )
    for kind in KINDS:
        result.figure(
            f"floor.{kind.key}.p50_ms",
            f"{kind.label}: start → result, p50",
            "ms",
            p50[kind.key],
            better=Better.LOWER,
        )
        result.figure(
            f"floor.{kind.key}.p99_ms",
            f"{kind.label}: start → result, p99",
            "ms",
            p99[kind.key],
            better=Better.LOWER,
        )
    result.ratio(
        "floor.five_noops_over_empty.rate",
        f"rate with {NOOP_ACTIVITIES} activities / empty rate",
        "floor.five_noops.rate",
        "floor.empty.rate",
        "share of the empty-workflow rate left when each workflow runs the activities",
    )
    result.ratio(
        "floor.five_noops_over_empty.p50",
        f"p50 latency with {NOOP_ACTIVITIES} activities / empty p50",
        "floor.five_noops.p50_ms",
        "floor.empty.p50_ms",
        "what the activities add to a workflow's latency, as a multiple",
    )
    result.evidence["history_events"] = history_events
    expected_count = params.workflows * len(KINDS) * ctx.rounds
    result.check(
        "every workflow completed",
        completed == expected_count,
        f"{completed} of {expected_count} ({params.workflows} of each kind per round)",
    )
    expected = {"empty": 5, "five_noops": 5 + 6 * NOOP_ACTIVITIES}
    result.check(
        "reference histories have the expected length",
        history_events == expected,
        ", ".join(f"{key}: {value} events" for key, value in history_events.items()),
    )
    result.notes.append(
        "The client starting the workflows runs in the benchmark process, the worker in "
        "its own; server, worker and client share this machine's CPUs."
    )
    return result
