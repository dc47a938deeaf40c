"""The API's calls into a request's ``ConsultationWorkflow``: submit, updates, the
live-details query, and how their failures become problem responses.

Refusals are told apart by ``ApplicationError.type`` (``core.vocabulary.ErrorType``)
and by RPC status codes, never by message text. Every call is bounded in time, so
an unreachable Temporal or a stopped worker answers 503/504 instead of hanging.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, TemporalError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from api.errors import (
    ChangeInProgress,
    ConsultantBusy,
    DeadlinePassed,
    Forbidden,
    IdempotencyKeyReused,
    InvalidState,
    MeetingPlatformRejected,
    NoFittingSlot,
    ProblemError,
    RateLimited,
    RequestFinished,
    SchedulingPolicyRefused,
    ServiceUnavailable,
    SlotUnavailable,
    Unprocessable,
    WorkflowTimeout,
)
from api.submission_checks import open_request_limit
from core.vocabulary import ErrorType
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import RequestDetails, SubmitRequest
from workflows.contracts.names import workflow_id_for
from workflows.contracts.workflow_input import ConsultationInput
from workflows.start import start_operation

logger = logging.getLogger(__name__)

MessageT = TypeVar("MessageT")
ResultT = TypeVar("ResultT")

UPDATE_TIMEOUT = timedelta(seconds=30)
"""Updates return once the workflow has made the change (one or two database
transactions); far longer means no worker is polling."""

LIVE_DETAILS_TIMEOUT = timedelta(seconds=2)
"""A read must not wait long for the optional live part."""


_REFUSALS: dict[ErrorType, type[ProblemError]] = {
    ErrorType.NOT_ALLOWED: Forbidden,
    ErrorType.INVALID_STATE: InvalidState,
    ErrorType.DEADLINE_PASSED: DeadlinePassed,
    ErrorType.BUSY: ChangeInProgress,
    ErrorType.REQUEST_FINISHED: RequestFinished,
    ErrorType.SLOT_UNAVAILABLE: SlotUnavailable,
    ErrorType.HOLD_LOST: SlotUnavailable,
    ErrorType.NO_FITTING_SLOT: NoFittingSlot,
    ErrorType.INVALID_REQUEST: Unprocessable,
    ErrorType.DUPLICATE_IDEMPOTENCY_KEY: IdempotencyKeyReused,
    ErrorType.MEETING_PLATFORM_REJECTED: MeetingPlatformRejected,
    ErrorType.OPEN_REQUEST_LIMIT: RateLimited,
    ErrorType.SCHEDULING_POLICY: SchedulingPolicyRefused,
    ErrorType.CONSULTANT_BUSY: ConsultantBusy,
}


def refusal(cause: BaseException | None) -> ProblemError | None:
    """The problem for a workflow's typed refusal; ``None`` if it is not one."""
    if not isinstance(cause, ApplicationError) or cause.type is None:
        return None
    try:
        problem = _REFUSALS[ErrorType(cause.type)]
    except ValueError:
        return None
    detail = cause.message[:1].upper() + cause.message[1:]
    if cause.type == ErrorType.DUPLICATE_IDEMPOTENCY_KEY and cause.details:
        return problem(f"{detail}.", request_id=str(cause.details[0]))
    if cause.type == ErrorType.OPEN_REQUEST_LIMIT and len(cause.details) == 2:
        open_requests, cap = cause.details
        return open_request_limit(int(open_requests), int(cap))
    if cause.type == ErrorType.SCHEDULING_POLICY and cause.details:
        return problem(f"{detail}.", policy=str(cause.details[0]))
    return problem(f"{detail}.")


def finished(request_id: uuid.UUID) -> RequestFinished:
    return RequestFinished(f"Consultation request {request_id} is finished; nothing can change.")


# --- calls --------------------------------------------------------------------------

ConsultationHandle = WorkflowHandle[ConsultationWorkflow, RequestDetails]


def handle_for(client: Client, request_id: uuid.UUID) -> ConsultationHandle:
    return client.get_workflow_handle_for(ConsultationWorkflow.run, workflow_id_for(request_id))


class RequestClosedError(Exception):
    """Submit found the request's workflow closed (``REJECT_DUPLICATE``)."""


async def submit(client: Client, request: ConsultationInput, *, task_queue: str) -> RequestDetails:
    """Update-with-start: returns once the request row is committed.

    Raises ``RequestClosedError`` when this request id's workflow has already
    closed; the caller reads what it stored instead.
    """
    operation = start_operation(request, task_queue=task_queue)
    call = client.execute_update_with_start_workflow(
        ConsultationWorkflow.submit, SubmitRequest(), start_workflow_operation=operation
    )
    try:
        return await _bounded(request.request_id, call)
    except WorkflowAlreadyStartedError as exc:
        raise RequestClosedError(str(request.request_id)) from exc
    except BaseException:
        _drain_start_outcome(operation)
        raise


async def update(
    client: Client,
    request_id: uuid.UUID,
    method: UpdateMethodMultiParam[[ConsultationWorkflow, MessageT], RequestDetails],
    message: MessageT,
) -> RequestDetails:
    """Run one update and return the workflow's answer (its details afterwards)."""
    handle = handle_for(client, request_id)
    return await _bounded(request_id, handle.execute_update(method, message))


async def update_after_reads(
    session: AsyncSession,
    client: Client,
    request_id: uuid.UUID,
    method: UpdateMethodMultiParam[[ConsultationWorkflow, MessageT], RequestDetails],
    message: MessageT,
) -> RequestDetails:
    """``update``, once the route has read what it checks: its transaction ends first,
    so no database connection is held while the workflow works (the workflow's own
    activities need connections from the same database)."""
    await session.commit()
    return await update(client, request_id, method, message)


async def live_details(client: Client, request_id: uuid.UUID) -> RequestDetails | None:
    """The ``details`` query, or ``None`` when it cannot be answered quickly (Temporal
    unreachable, no worker, workflow gone): reads fall back to the database view."""
    handle = handle_for(client, request_id)
    try:
        async with asyncio.timeout(LIVE_DETAILS_TIMEOUT.total_seconds()):
            return await handle.query(ConsultationWorkflow.details)
    except (TimeoutError, RPCError, TemporalError, RuntimeError) as exc:
        logger.info("live details of request %s unavailable: %s", request_id, exc)
        return None


async def is_running(client: Client, request_id: uuid.UUID) -> bool:
    """Whether the request's workflow runs; ``False`` also when that cannot be told
    quickly (the caller then answers as if it did not)."""
    handle = handle_for(client, request_id)
    try:
        async with asyncio.timeout(LIVE_DETAILS_TIMEOUT.total_seconds()):
            description = await handle.describe()
    except (TimeoutError, RPCError, TemporalError, RuntimeError) as exc:
        logger.info("workflow of request %s not described: %s", request_id, exc)
        return False
    return description.status is WorkflowExecutionStatus.RUNNING


async def _bounded(request_id: uuid.UUID, call: Awaitable[ResultT]) -> ResultT:
    """Await a submit or an update, turning every way it can fail into a problem."""
    try:
        async with asyncio.timeout(UPDATE_TIMEOUT.total_seconds()):
            return await call
    except WorkflowUpdateFailedError as exc:
        problem = refusal(exc.cause)
        if problem is None:
            raise  # not a business refusal: a bug worth a 500 and a log entry
        raise problem from exc
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise WorkflowTimeout(
            "The change was sent but not confirmed in time; it may still take effect. "
            "Read the request again before retrying.",
            request_id=str(request_id),
        ) from exc
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise finished(request_id) from exc
        logger.warning("Temporal refused a call for request %s: %s", request_id, exc)
        raise _unavailable() from exc
    except RuntimeError as exc:
        # The lazily connecting client raises this when it cannot reach the server.
        logger.warning("Temporal unreachable for request %s: %s", request_id, exc)
        raise _unavailable() from exc


def _drain_start_outcome(operation: WithStartWorkflowOperation[Any, Any]) -> None:
    """The SDK fails the start operation's handle with the same error as the update;
    read it in the background, or every failed submit (Temporal restarting, say) logs
    "Future exception was never retrieved"."""
    reading = asyncio.ensure_future(operation.workflow_handle())
    reading.add_done_callback(lambda done: done.cancelled() or done.exception())


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The workflow service is not reachable right now; retry shortly.",
        headers={"Retry-After": "1"},
    )
