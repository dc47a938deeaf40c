"""Consultation requests: submit, read, and the decisions that move them on.

The API never writes request rows: it starts the request's workflow and sends it
updates, and reads the rows the workflow's activities wrote. Each decision is
checked against the stored request first (who may act on it), so a caller who may
not act never reaches the workflow; the workflow's own validators then refuse
what the current state does not allow, before anything is written.
"""

from __future__ import annotations

import uuid
from typing import Annotated, TypeVar

from fastapi import APIRouter, Body, Depends, Header, Query, Response, status
from sqlalchemy import select, tuple_
from temporalio.workflow import UpdateMethodMultiParam

from api import consultation_workflow
from api.auth import Principal, Role
from api.deps import (
    ContainerDep,
    LearnerPrincipal,
    OperatorPrincipal,
    SessionDep,
    SettingsDep,
    SignedIn,
    require_any_role,
)
from api.errors import Forbidden, NotFound, Unprocessable
from api.openapi import problems
from api.pagination import Page, PageQuery, decode_time_cursor, encode_time_cursor, keyset_page
from api.party_clocks import request_clocks
from api.schemas.consultation_requests import (
    AssignBody,
    CancelBody,
    ConsultationRequestCreate,
    ConsultationRequestOut,
    DeclineBody,
)
from api.submissions import submit_request
from api.visibility import is_requester, visible_row, visible_to
from core.settings import Settings
from core.vocabulary import Party, RequestStatus
from db import requests
from db.models import AvailabilitySlot, ConsultantProfile, ConsultationRequest
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import (
    AssignRequest,
    CancelRequest,
    ConfirmRequest,
    DeclineRequest,
    RequestDetails,
)

router = APIRouter(prefix="/v1/consultation-requests", tags=["consultation requests"])

MessageT = TypeVar("MessageT")
DecisionT = TypeVar("DecisionT", ConfirmRequest, DeclineRequest)

ConsultantPrincipal = Annotated[Principal, Depends(require_any_role(Role.CONSULTANT))]
RequesterOrOperator = Annotated[Principal, Depends(require_any_role(Role.LEARNER, Role.OPERATOR))]

MAX_IDEMPOTENCY_KEY_LENGTH = 255  # the length of consultation_requests.idempotency_key

NOT_YOURS = (404, "No such request, or not yours to see")
WORKFLOW_PROBLEMS = problems(
    (403, "Not allowed to act on this request (role or validator)"),
    NOT_YOURS,
    (409, "Not possible now: wrong state, deadline passed, request finished"),
    (503, "Temporal is unreachable; nothing was changed"),
    (504, "No answer in time; the change may still take effect"),
)


# --- reading ----------------------------------------------------------------------


async def _stored(session: SessionDep, request_id: uuid.UUID) -> ConsultationRequest:
    row = await session.get(ConsultationRequest, request_id, populate_existing=True)
    if row is None:
        raise NotFound(f"Consultation request {request_id} does not exist.")
    return row


async def _view(
    session: SessionDep,
    settings: Settings,
    row: ConsultationRequest,
    live: RequestDetails | None = None,
) -> ConsultationRequestOut:
    clocks = await request_clocks(session, [row], settings.default_learner_time_zone)
    return ConsultationRequestOut.of(row, clocks[row.id], live)


def _require_open(row: ConsultationRequest) -> None:
    """A finished request's workflow may be gone: answer from the row."""
    if RequestStatus(row.status).is_final:
        raise consultation_workflow.finished(row.id)


@router.get(
    "",
    summary="List consultation requests",
    description=(
        "Newest first. A learner sees their own requests, a consultant those assigned to "
        "them, an operator all."
    ),
)
async def list_requests(
    page: PageQuery,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    statuses: Annotated[
        list[RequestStatus] | None,
        Query(alias="status", description="Only these statuses (repeatable)."),
    ] = None,
) -> Page[ConsultationRequestOut]:
    table = ConsultationRequest
    query = (
        select(table)
        .where(visible_to(principal, ConsultationRequest))
        .order_by(table.requested_at.desc(), table.id.desc())
        .limit(page.limit + 1)
    )
    if statuses:
        query = query.where(table.status.in_([s.value for s in statuses]))
    if page.cursor is not None:
        at, after_id = decode_time_cursor(page.cursor)
        query = query.where(tuple_(table.requested_at, table.id) < tuple_(at, after_id))
    rows = list((await session.scalars(query)).all())
    clocks = await request_clocks(session, rows, settings.default_learner_time_zone)
    return keyset_page(
        rows,
        page.limit,
        lambda row: ConsultationRequestOut.of(row, clocks[row.id]),
        lambda last: encode_time_cursor(last.requested_at, last.id),
    )


@router.get(
    "/{request_id}",
    summary="Get a consultation request",
    description=(
        "While the request is open, `live` carries what its workflow is doing (the "
        "confirmation deadline, the attempt, the next search). If the workflow service "
        "cannot answer quickly, `live` is null and the stored fields are returned."
    ),
    responses=problems(NOT_YOURS),
)
async def get_request(
    request_id: uuid.UUID, session: SessionDep, principal: SignedIn, container: ContainerDep
) -> ConsultationRequestOut:
    row = await visible_row(session, principal, ConsultationRequest, request_id)
    clocks = await request_clocks(session, [row], container.settings.default_learner_time_zone)
    live = None
    if not RequestStatus(row.status).is_final:
        # The read is over: its connection goes back to the pool before the query,
        # which may take up to its timeout when no worker answers.
        await session.commit()
        live = await consultation_workflow.live_details(container.temporal, row.id)
    return ConsultationRequestOut.of(row, clocks[row.id], live)


# --- submitting -------------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Request a consultation (learner)",
    description=(
        "Stores the request and starts its process; answers once the request is stored "
        "(a GET right after sees it). A consultant is then assigned and asked to confirm.\n\n"
        "Book a start from the availability search with its `start_time` as `start` and "
        "its `slot_id` (or the consultant's id as `consultant_id`): exactly that time is "
        "held and offered to that consultant alone. A `slot_id` without `start` books "
        "the slot's earliest start; a preferred window lets the service choose.\n\n"
        "Send an `Idempotency-Key` to make retries safe: the same key from the same "
        "learner always names the same request, also when sent concurrently. A repeat "
        "after the request was stored answers 200 with it (submissions racing before "
        "that all answer 201, with the same request, or 409 `submission-in-progress` "
        "with `Retry-After` while the first copy is being stored; never "
        "`slot-unavailable` for the slot the first copy holds). Reusing a key with a different "
        "body is refused with 409 (`request_id` names the original); without a "
        "preferred window the default window is not compared."
    ),
    responses={
        200: {"description": "Repeated Idempotency-Key: the request it created"},
        **problems(
            (404, "Unknown service type, slot or consultant"),
            (
                409,
                "The slot is taken, the chosen start is not free (`start-unavailable`, "
                "with a `reason`), the key was used for another body, or its first "
                "submission is still being stored (retry after `Retry-After`)",
            ),
            (
                422,
                "Invalid body, inactive service type, slot or window unusable, a start "
                "that is not one of the offered starts (`start-off-grid`)",
            ),
            (503, "Temporal is unreachable; nothing was started"),
            (504, "Started but not confirmed in time; retry with the same key"),
        ),
    },
)
async def submit(
    body: ConsultationRequestCreate,
    response: Response,
    session: SessionDep,
    principal: LearnerPrincipal,
    container: ContainerDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
            pattern=r"^[\x20-\x7e]+$",
            description="Any printable ASCII string, e.g. a UUID the client made up.",
        ),
    ] = None,
) -> ConsultationRequestOut:
    submitted = await submit_request(container, session, principal, body, idempotency_key)
    if not submitted.created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"{router.prefix}/{submitted.request.id}"
    return await _view(session, container.settings, submitted.request)


# --- decisions --------------------------------------------------------------------


async def _change(
    session: SessionDep,
    container: ContainerDep,
    request_id: uuid.UUID,
    method: UpdateMethodMultiParam[[ConsultationWorkflow, MessageT], RequestDetails],
    message: MessageT,
) -> ConsultationRequestOut:
    """Send the change to the request's workflow, then read the row its activity wrote
    (the workflow answers an update only after that transaction committed)."""
    await consultation_workflow.update_after_reads(
        session, container.temporal, request_id, method, message
    )
    return await _view(session, container.settings, await _stored(session, request_id))


async def _decide(
    request_id: uuid.UUID,
    session: SessionDep,
    principal: Principal,
    container: ContainerDep,
    method: UpdateMethodMultiParam[[ConsultationWorkflow, DecisionT], RequestDetails],
    message: DecisionT,
) -> ConsultationRequestOut:
    """Confirm or decline: only the consultant the stored request is assigned to.

    To a consultant it was never offered to, the request is a 404 like any other
    that is not theirs: neither its existence nor its state is revealed. One who was
    asked before (and declined, or let the deadline pass) learns why their answer
    no longer counts. A request assigned to nobody right now goes on to the
    workflow, whose validator answers why it cannot be decided (409).
    """
    row = await _stored(session, request_id)
    assigned = row.assigned_consultant_user_id
    if assigned != principal.user_id and not await requests.was_offered_to(
        session, request_id, principal.user_id
    ):
        await visible_row(
            session, principal, ConsultationRequest, request_id
        )  # 404 unless they see it
        raise Forbidden("The request is not assigned to you.")
    if assigned is not None and assigned != principal.user_id:
        raise Forbidden("The request is assigned to another consultant.")
    _require_open(row)
    return await _change(session, container, request_id, method, message)


@router.post(
    "/{request_id}/confirm",
    summary="Confirm an assigned request (its consultant)",
    description=(
        "Books the held slot: the request becomes `scheduled` with a session. 409 "
        "`consultant-busy` when the consultant's linked calendar has shown them busy "
        "at that time since the hold: the request goes on to the next candidate."
    ),
    responses=WORKFLOW_PROBLEMS,
)
async def confirm(
    request_id: uuid.UUID,
    session: SessionDep,
    principal: ConsultantPrincipal,
    container: ContainerDep,
) -> ConsultationRequestOut:
    return await _decide(
        request_id,
        session,
        principal,
        container,
        ConsultationWorkflow.confirm,
        ConfirmRequest(consultant_id=principal.user_id),
    )


@router.post(
    "/{request_id}/decline",
    summary="Decline an assigned request (its consultant)",
    description="Frees the held slot; the next eligible consultant is asked.",
    responses=WORKFLOW_PROBLEMS,
)
async def decline(
    request_id: uuid.UUID,
    body: DeclineBody,
    session: SessionDep,
    principal: ConsultantPrincipal,
    container: ContainerDep,
) -> ConsultationRequestOut:
    return await _decide(
        request_id,
        session,
        principal,
        container,
        ConsultationWorkflow.decline,
        DeclineRequest(consultant_id=principal.user_id, reason=body.reason),
    )


@router.post(
    "/{request_id}/cancel",
    summary="Cancel a request (its learner or an operator)",
    description=(
        "Before a session exists the request is simply cancelled (and any held slot "
        "freed); a scheduled one cancels its session too, which the learner may do "
        "until the cancellation cutoff before the start."
    ),
    responses=WORKFLOW_PROBLEMS,
)
async def cancel(
    request_id: uuid.UUID,
    session: SessionDep,
    principal: RequesterOrOperator,
    container: ContainerDep,
    body: Annotated[CancelBody | None, Body()] = None,
) -> ConsultationRequestOut:
    row = await visible_row(session, principal, ConsultationRequest, request_id)
    if is_requester(principal, row):
        party = Party.REQUESTER
    elif principal.is_operator:
        party = Party.OPERATOR
    else:  # a consultant who is also a learner, acting on a request assigned to them
        raise Forbidden("Only the requester or an operator cancels a request; decline it.")
    _require_open(row)
    return await _change(
        session,
        container,
        request_id,
        ConsultationWorkflow.cancel,
        CancelRequest(
            party=party, actor_id=principal.user_id, reason=body.reason if body else None
        ),
    )


@router.post(
    "/{request_id}/assign",
    summary="Assign a waiting request to a consultant (operator)",
    description=(
        "For a request in `pending_assignment`: the consultant is asked to confirm, "
        "with the given slot or their earliest free slot fitting the request. "
        "409 `no-fitting-slot` when there is none; 409 `scheduling-policy` when a "
        "policy is what stands in the way, named in `policy` (`daily_cap`, "
        "`weekly_cap`, `buffer`, `beyond_horizon`); 409 `consultant-busy` when the "
        "consultant's linked calendar is."
    ),
    responses={**WORKFLOW_PROBLEMS, **problems((422, "The slot is not the consultant's"))},
)
async def assign(
    request_id: uuid.UUID,
    body: AssignBody,
    session: SessionDep,
    principal: OperatorPrincipal,
    container: ContainerDep,
) -> ConsultationRequestOut:
    row = await _stored(session, request_id)
    if await session.get(ConsultantProfile, body.consultant_id) is None:
        raise NotFound(f"Consultant {body.consultant_id} has no profile.")
    if body.slot_id is not None:
        slot = await session.get(AvailabilitySlot, body.slot_id)
        if slot is None:
            raise NotFound(f"Slot {body.slot_id} does not exist.")
        if slot.consultant_user_id != body.consultant_id:
            raise Unprocessable(f"Slot {slot.id} belongs to another consultant.")
    _require_open(row)
    return await _change(
        session,
        container,
        request_id,
        ConsultationWorkflow.assign,
        AssignRequest(
            operator_id=principal.user_id, consultant_id=body.consultant_id, slot_id=body.slot_id
        ),
    )
