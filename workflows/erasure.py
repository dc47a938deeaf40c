"""``PersonErasureWorkflow``: erases one person, step by step, resumable at any point.

1. close their profile for booking (no new assignments while the rest happens);
2. settle what is open through the requests' own workflows: their requests and the
   sessions they give are cancelled (``account_erased``, with the usual events),
   requests offered to them as consultant are declined (so another is asked); a
   session in progress is waited for;
3. delete their requests' and exports' closed workflow executions from Temporal;
4. delete their free text; 5. pseudonymise their id in event payloads; 6. and in
   rows; 7. record the end (and forget the id).

Every step is an idempotent activity (batches that find less each time), so a crash
anywhere resumes where the history says, and re-running a done step changes nothing.
The current details in the Temporal UI say which step it is on and what it did.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from core.vocabulary import ErasureStep, OpenRequestAction
    from workflows.contracts.erasure import (
        WORKFLOW_NAME,
        BatchInput,
        BatchResult,
        ErasureActivity,
        ErasureInput,
        ErasureSummary,
        EventsInput,
        EventsResult,
        ForgetInput,
        ForgetResult,
        OpenRequestList,
        OpenRequestsInput,
        PersonRef,
        SettleInput,
        SettleResult,
        StepInput,
    )

ResultT = TypeVar("ResultT")

STEP_TIMEOUT = timedelta(minutes=2)
# The activities heartbeat every 2 s: one whose worker died is retried after this.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
OPEN_REQUESTS_PER_ROUND = 50
WAIT_MARGIN = timedelta(seconds=5)
"""Past a session's end before looking again: it completes on its own clock."""


@workflow.defn(name=WORKFLOW_NAME)
class PersonErasureWorkflow:
    def __init__(self) -> None:
        self._summary = ErasureSummary()
        self._step = ErasureStep.STARTED

    @workflow.run
    async def run(self, request: ErasureInput) -> ErasureSummary:
        person = PersonRef(pseudonym=request.pseudonym)
        await self._enter(request, ErasureStep.STARTED)
        await _call(ErasureActivity.CLOSE_FOR_BOOKING, person, None)

        await self._enter(request, ErasureStep.SETTLING_REQUESTS)
        await self._settle_open_requests(request)

        await self._enter(request, ErasureStep.FORGETTING_WORKFLOWS)
        after = None
        while True:
            forgotten = await _call(
                ErasureActivity.FORGET_WORKFLOWS,
                ForgetInput(pseudonym=request.pseudonym, after=after, limit=request.batch_size),
                ForgetResult,
            )
            self._summary.workflows_deleted += forgotten.deleted
            self._show()
            if forgotten.next_after is None:
                break
            after = forgotten.next_after

        await self._enter(request, ErasureStep.DELETING_FREE_TEXT)
        batch = BatchInput(pseudonym=request.pseudonym, limit=request.batch_size)
        while changed := (
            await _call(ErasureActivity.DELETE_FREE_TEXT, batch, BatchResult)
        ).changed:
            self._summary.free_text_cleared += changed
            self._show()

        await self._enter(request, ErasureStep.PSEUDONYMISING_EVENTS)
        position: int | None = 0
        while position is not None:
            events = await _call(
                ErasureActivity.PSEUDONYMISE_EVENTS,
                EventsInput(
                    pseudonym=request.pseudonym, after_sequence=position, span=request.event_span
                ),
                EventsResult,
            )
            self._summary.events_pseudonymised += events.changed
            self._show()
            position = events.next_after

        await self._enter(request, ErasureStep.PSEUDONYMISING_ROWS)
        while changed := (
            await _call(ErasureActivity.PSEUDONYMISE_ROWS, batch, BatchResult)
        ).changed:
            self._summary.rows_pseudonymised += changed
            self._show()

        await _call(ErasureActivity.FINISH, person, None)
        self._step = ErasureStep.COMPLETED
        self._summary.steps_done.append(ErasureStep.COMPLETED)
        self._show()
        return self._summary

    async def _settle_open_requests(self, request: ErasureInput) -> None:
        """Until nothing of theirs is open. A session in progress cannot be cancelled:
        wait for its end, then look again."""
        while True:
            found = await _call(
                ErasureActivity.OPEN_REQUESTS,
                OpenRequestsInput(pseudonym=request.pseudonym, limit=OPEN_REQUESTS_PER_ROUND),
                OpenRequestList,
            )
            if not found.items:
                return
            wait_until = None
            for item in found.items:
                if item.action is OpenRequestAction.WAIT:
                    until = item.until
                else:
                    settled = await _call(
                        ErasureActivity.SETTLE_REQUEST,
                        SettleInput(
                            pseudonym=request.pseudonym,
                            request_id=item.request_id,
                            action=item.action,
                        ),
                        SettleResult,
                    )
                    until = settled.wait_until
                    if settled.settled and item.action is OpenRequestAction.CANCEL:
                        self._summary.cancelled += 1
                    elif settled.settled:
                        self._summary.declined += 1
                    self._show()
                if until is not None:
                    wait_until = until if wait_until is None else max(wait_until, until)
            if wait_until is not None:
                self._show(f"waiting for a session in progress to end at {wait_until.isoformat()}")
                await workflow.sleep(max(wait_until - workflow.now(), timedelta(0)) + WAIT_MARGIN)

    async def _enter(self, request: ErasureInput, step: ErasureStep) -> None:
        if self._step is not step:
            self._summary.steps_done.append(self._step)
        self._step = step
        self._show()
        await _call(
            ErasureActivity.RECORD_STEP, StepInput(pseudonym=request.pseudonym, step=step), None
        )

    def _show(self, note: str | None = None) -> None:
        summary = self._summary
        details = (
            f"step {list(ErasureStep).index(self._step) + 1} of {len(ErasureStep)}: "
            f"{self._step.value}; cancelled {summary.cancelled}, declined {summary.declined}, "
            f"workflows deleted {summary.workflows_deleted}, free text cleared "
            f"{summary.free_text_cleared}, events pseudonymised "
            f"{summary.events_pseudonymised}, rows pseudonymised {summary.rows_pseudonymised}"
        )
        workflow.set_current_details(details if note is None else f"{details}\n{note}")


async def _call(name: ErasureActivity, arg: Any, result_type: type[ResultT] | None) -> ResultT:
    result: ResultT = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=STEP_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=RETRY,
    )
    return result
