"""The ``erasure.*`` activities: each step of a person's erasure, idempotent.

They find the person by the pseudonym in their input: the id itself is read from
``person_erasures`` while the erasure runs, and never returned to the workflow.
Open requests are settled through their own workflows (the Temporal client of the
worker, ``activity.client()``), so the usual events are written and the slots freed
as for any cancellation or decline.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities import SessionFactory, transaction
from core.vocabulary import (
    FINAL_REQUEST_STATUSES,
    CancellationReason,
    DeclineReason,
    OpenRequestAction,
    Party,
    SessionStatus,
)
from db import erasure
from db.erasure import RequestState, Subject
from workflows.contracts.calendar_sync import calendar_sync_workflow_id
from workflows.contracts.erasure import (
    CANCEL_UPDATE,
    DECLINE_UPDATE,
    ERASURE_ACTOR,
    BatchInput,
    BatchResult,
    ErasureActivity,
    EventsInput,
    EventsResult,
    ForgetInput,
    ForgetResult,
    OpenRequestItem,
    OpenRequestList,
    OpenRequestsInput,
    PersonRef,
    SettleInput,
    SettleResult,
    StepInput,
)
from workflows.contracts.export import export_workflow_id
from workflows.contracts.messages import CancelRequest, DeclineRequest, RequestDetails
from workflows.contracts.names import workflow_id_for

logger = logging.getLogger(__name__)

UPDATE_TIMEOUT_S = 60.0
NOT_SETTLED = "ErasureRequestNotSettled"
STILL_OPEN = "ErasureRequestStillOpen"


HEARTBEAT_EVERY_S = 2.0
"""Well inside the workflow's heartbeat timeout: a worker that dies mid-activity is
noticed within seconds, and the step retried on another, not after its whole timeout."""

ActivityT = TypeVar("ActivityT", bound=Callable[..., Awaitable[Any]])


def heartbeating(run: ActivityT) -> ActivityT:
    """Heartbeat while the activity runs (a settle waits on another workflow)."""

    @functools.wraps(run)
    async def beating(*args: Any, **kwargs: Any) -> Any:
        async def beat() -> None:
            while True:
                activity.heartbeat()
                await asyncio.sleep(HEARTBEAT_EVERY_S)

        beater = asyncio.create_task(beat())
        try:
            return await run(*args, **kwargs)
        finally:
            beater.cancel()

    return cast(ActivityT, beating)


def _settled(state: RequestState | None, action: OpenRequestAction, subject: Subject) -> bool:
    if state is None or state.status in FINAL_REQUEST_STATUSES:
        return True
    return action is OpenRequestAction.DECLINE and state.assigned_to not in subject.ids


class ErasureActivities:
    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    async def _subject(self, pseudonym: uuid.UUID) -> Subject | None:
        async with transaction(self._sessions) as session:
            return await erasure.running_subject(session, pseudonym)

    @activity.defn(name=ErasureActivity.RECORD_STEP)
    @heartbeating
    async def record_step(self, arg: StepInput) -> None:
        async with transaction(self._sessions) as session:
            await erasure.set_step(session, arg.pseudonym, arg.step)

    @activity.defn(name=ErasureActivity.CLOSE_FOR_BOOKING)
    @heartbeating
    async def close_for_booking(self, arg: PersonRef) -> None:
        async with transaction(self._sessions) as session:
            subject = await erasure.running_subject(session, arg.pseudonym)
            if subject is not None:
                await erasure.close_for_booking(session, subject)
                await erasure.delete_free_slots(session, subject)
                await erasure.delete_calendars(session, subject)
                await erasure.delete_calendar_feeds(session, subject)

    @activity.defn(name=ErasureActivity.OPEN_REQUESTS)
    @heartbeating
    async def open_requests(self, arg: OpenRequestsInput) -> OpenRequestList:
        async with transaction(self._sessions) as session:
            subject = await erasure.running_subject(session, arg.pseudonym)
            if subject is None:
                return OpenRequestList(items=())
            found = await erasure.open_requests(session, subject, arg.limit)
        return OpenRequestList(
            items=tuple(
                OpenRequestItem(request_id=item.request_id, action=item.action, until=item.until)
                for item in found
            )
        )

    @activity.defn(name=ErasureActivity.SETTLE_REQUEST)
    @heartbeating
    async def settle_request(self, arg: SettleInput) -> SettleResult:
        """Ask the request's workflow to cancel (or decline), then judge by the row it
        wrote: settled, waiting for its session to end, or not yet (retried)."""
        subject = await self._subject(arg.pseudonym)
        if subject is None:
            return SettleResult(settled=False)
        state = await self._state(arg.request_id)
        if _settled(state, arg.action, subject):
            return SettleResult(settled=False)
        wait = _in_progress_until(state)
        if wait is not None:
            return SettleResult(settled=False, wait_until=wait)
        await self._ask_workflow(activity.client(), subject, arg)
        state = await self._state(arg.request_id)
        if _settled(state, arg.action, subject):
            return SettleResult(settled=True)
        wait = _in_progress_until(state)
        if wait is not None:
            return SettleResult(settled=False, wait_until=wait)
        raise ApplicationError(
            f"request {arg.request_id} is still {state.status.value if state else 'missing'}",
            type=NOT_SETTLED,
        )

    async def _state(self, request_id: uuid.UUID) -> RequestState | None:
        async with transaction(self._sessions) as session:
            return await erasure.request_state(session, request_id)

    async def _ask_workflow(self, client: Client, subject: Subject, arg: SettleInput) -> None:
        handle = client.get_workflow_handle(workflow_id_for(arg.request_id))
        actor = subject.requested_by or ERASURE_ACTOR
        try:
            async with asyncio.timeout(UPDATE_TIMEOUT_S):
                if arg.action is OpenRequestAction.DECLINE:
                    await handle.execute_update(
                        DECLINE_UPDATE,
                        DeclineRequest(
                            consultant_id=subject.person_id, reason=DeclineReason.UNAVAILABLE
                        ),
                        result_type=RequestDetails,
                    )
                else:
                    await handle.execute_update(
                        CANCEL_UPDATE,
                        CancelRequest(
                            party=Party.SYSTEM,
                            actor_id=actor,
                            reason=CancellationReason.ACCOUNT_ERASED,
                        ),
                        result_type=RequestDetails,
                    )
        except WorkflowUpdateFailedError as refused:
            # The workflow moved on meanwhile (finished, started the session, is busy);
            # the row says what that means.
            logger.info(
                "request %s refused the erasure's %s: %s", arg.request_id, arg.action, refused.cause
            )
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            logger.warning("request %s has no running workflow", arg.request_id)

    @activity.defn(name=ErasureActivity.FORGET_WORKFLOWS)
    @heartbeating
    async def forget_workflows(self, arg: ForgetInput) -> ForgetResult:
        """Delete the executions of their requests, exports and calendar sync from
        Temporal: closed ones, and finished ones still running (a completed session's
        no-show window, the calendar sync)."""
        async with transaction(self._sessions) as session:
            subject = await erasure.running_subject(session, arg.pseudonym)
            if subject is None:
                return ForgetResult(deleted=0, next_after=None)
            requests = await erasure.request_ids_after(session, subject, arg.after, arg.limit)
            exports = await erasure.export_ids(session, subject) if arg.after is None else []
        client = activity.client()
        deleted = 0
        if arg.after is None:
            # Their calendar sync (its id names them); a running one is terminated.
            deleted += await _delete_execution(client, calendar_sync_workflow_id(subject.person_id))
        for export_id in exports:
            deleted += await _delete_execution(client, export_workflow_id(export_id))
        for request_id, finished in requests:
            if not finished:
                raise ApplicationError(
                    f"request {request_id} is still open; its workflow stays for now",
                    type=STILL_OPEN,
                )
            deleted += await _delete_execution(client, workflow_id_for(request_id))
        more = len(requests) == arg.limit
        return ForgetResult(deleted=deleted, next_after=requests[-1][0] if more else None)

    @activity.defn(name=ErasureActivity.DELETE_FREE_TEXT)
    @heartbeating
    async def delete_free_text(self, arg: BatchInput) -> BatchResult:
        async with transaction(self._sessions) as session:
            subject = await erasure.running_subject(session, arg.pseudonym)
            if subject is None:
                return BatchResult(changed=0)
            await erasure.bound_lock_waits(session)
            return BatchResult(changed=await erasure.delete_free_text(session, subject, arg.limit))

    @activity.defn(name=ErasureActivity.PSEUDONYMISE_EVENTS)
    @heartbeating
    async def pseudonymise_events(self, arg: EventsInput) -> EventsResult:
        async with transaction(self._sessions) as session:
            subject = await erasure.running_subject(session, arg.pseudonym)
            if subject is None:
                return EventsResult(changed=0, next_after=None)
            await erasure.bound_lock_waits(session)
            changed, next_after = await erasure.pseudonymise_events(
                session, subject, after_sequence=arg.after_sequence, span=arg.span
            )
        return EventsResult(changed=changed, next_after=next_after)

    @activity.defn(name=ErasureActivity.PSEUDONYMISE_ROWS)
    @heartbeating
    async def pseudonymise_rows(self, arg: BatchInput) -> BatchResult:
        async with transaction(self._sessions) as session:
            subject = await erasure.running_subject(session, arg.pseudonym)
            if subject is None:
                return BatchResult(changed=0)
            await erasure.bound_lock_waits(session)
            return BatchResult(changed=await erasure.pseudonymise_rows(session, subject, arg.limit))

    @activity.defn(name=ErasureActivity.FINISH)
    @heartbeating
    async def finish(self, arg: PersonRef) -> None:
        async with transaction(self._sessions) as session:
            subject = await erasure.running_subject(session, arg.pseudonym)
            if subject is None:
                return
            await erasure.delete_free_slots(session, subject)
            await erasure.delete_calendars(session, subject)
            # A feed an operator made while the erasure began is gone too.
            await erasure.delete_calendar_feeds(session, subject)
            await erasure.complete(session, arg.pseudonym)


def _in_progress_until(state: RequestState | None) -> datetime | None:
    if state is not None and state.session_status is SessionStatus.IN_PROGRESS:
        return state.session_end
    return None


async def _delete_execution(client: Client, workflow_id: str) -> int:
    """1 if Temporal had the execution (running ones are terminated first), else 0."""
    try:
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            )
        )
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return 0
        raise
    return 1
