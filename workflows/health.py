"""A trivial workflow that proves a worker polls its task queue."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="HealthCheck")
class HealthCheckWorkflow:
    @workflow.run
    async def run(self, probe: str) -> str:
        return f"ok:{probe}"
