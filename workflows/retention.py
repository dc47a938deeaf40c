"""``RetentionSweepWorkflow``: removes what has been kept long enough, in batches.

Started by the ``retention-sweep`` Temporal Schedule (``booking setup``), which skips
a start while the previous run is still going. Each batch is one activity, one short
database transaction of at most ``batch_size`` rows; the workflow goes on with a kind
until a batch comes back short, so a backlog is worked off in one run, and its
current details in the Temporal UI say how far it got. After ``MAX_BATCHES_PER_RUN``
batches it continues as new, which keeps its history small.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from core.vocabulary import RetentionKind
    from workflows.contracts.retention import (
        SWEEP_ORDER,
        WORKFLOW_NAME,
        RetentionActivity,
        RetentionPolicy,
        SweepBatchInput,
        SweepBatchResult,
        SweepReport,
    )

BATCH_TIMEOUT = timedelta(minutes=1)
BATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)


@workflow.defn(name=WORKFLOW_NAME)
class RetentionSweepWorkflow:
    def __init__(self) -> None:
        self._report = SweepReport()

    @workflow.run
    async def run(self, policy: RetentionPolicy) -> SweepReport:
        now = workflow.now()
        kinds = list(SWEEP_ORDER)
        if policy.resume_from is not None:
            kinds = kinds[kinds.index(policy.resume_from) :]
        batches = 0
        for kind in kinds:
            if kind not in policy.keep_seconds:
                continue  # a schedule set up before this kind existed keeps it
            older_than = now - policy.keep_for(kind)
            while True:
                if batches >= policy.max_batches_per_run:
                    workflow.continue_as_new(replace(policy, resume_from=kind))
                removed = await self._sweep(kind, older_than, policy.batch_size)
                batches += 1
                if removed < policy.batch_size:
                    break
        workflow.set_current_details(f"done: {self._summary()}")
        return self._report

    async def _sweep(self, kind: RetentionKind, older_than: datetime, batch_size: int) -> int:
        workflow.set_current_details(f"sweeping {kind.value}; so far {self._summary()}")
        result: SweepBatchResult = await workflow.execute_activity(
            RetentionActivity.SWEEP_BATCH,
            SweepBatchInput(kind=kind, older_than=older_than, batch_size=batch_size),
            result_type=SweepBatchResult,
            start_to_close_timeout=BATCH_TIMEOUT,
            retry_policy=BATCH_RETRY,
        )
        self._report.removed[kind] = self._report.removed.get(kind, 0) + result.removed
        return result.removed

    def _summary(self) -> str:
        removed = self._report.removed
        return ", ".join(f"{kind.value} {removed[kind]}" for kind in removed) or "nothing removed"
