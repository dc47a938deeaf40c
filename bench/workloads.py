"""The floor's reference workflows: the least a workflow and an activity can cost.

They run on their own task queue in a worker built with the options ``worker.py``
gives the service's worker (the SDK's defaults for pollers, concurrency and the
sandbox), so the service's figures can be read against them.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

NOOP_ACTIVITIES = 5
# The same grace worker.py gives in-flight tasks on shutdown.
SHUTDOWN_GRACE = timedelta(seconds=20)


@activity.defn(name="BenchNoop")
async def noop() -> None:
    """Does nothing; its cost is the scheduling round trip."""


@workflow.defn(name="BenchEmpty")
class EmptyWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


@workflow.defn(name="BenchFiveNoops")
class FiveNoopsWorkflow:
    """Five no-op activities one after the other, as a booking runs its steps."""

    @workflow.run
    async def run(self) -> None:
        for _ in range(NOOP_ACTIVITIES):
            await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))


def build_floor_worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[EmptyWorkflow, FiveNoopsWorkflow],
        activities=[noop],
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
    )
