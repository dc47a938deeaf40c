"""Scheduled sessions: read them, and cancel, move or mark a no-show.

Changes go to the workflow of the session's request, which owns the session row.
Who may do what:

- cancel: the learner (until the cancellation cutoff before the start), the
  session's consultant (with a reason code), an operator;
- reschedule: the same three, the learner until the cutoff; the new time is a start
  a free slot of the same consultant offers (held before the old time is freed);
- no-show: the session's consultant (reporting the learner) or an operator (either
  party), from the grace period after the start until the report window closes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Body, Query
from sqlalchemy import select, tuple_
from temporalio.workflow import UpdateMethodMultiParam

from api import consultation_workflow
from api.auth import Principal, Role
from api.deps import ConsultantOrOperator, ContainerDep, SessionDep, SettingsDep, SignedIn
from api.errors import Forbidden, InvalidState, NotFound, Unprocessable
from api.openapi import problems
from api.pagination import Page, PageQuery, decode_time_cursor, encode_time_cursor, keyset_page
from api.party_clocks import session_zones
from api.schemas.consultation_requests import CancelBody
from api.schemas.fields import IsoAwareDatetime
from api.schemas.sessions import NoShowBody, RescheduleBody, SessionDetail, SessionOut
from api.submission_checks import service_policy, start_on_offer, start_rules
from api.visibility import is_requester, visible_row, visible_to
from core.settings import Settings
from core.vocabulary import ParticipantRole, Party, SessionStatus
from db.models import AvailabilitySlot, ConsultantProfile, ScheduledSession, ServiceType
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import (
    CancelRequest,
    NoShowReport,
    RequestDetails,
    RescheduleRequest,
)

MessageT = TypeVar("MessageT")

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

NOT_YOURS = (404, "No such session, or not yours to see")
WORKFLOW_PROBLEMS = problems(
    (403, "Not allowed (role, party or validator)"),
    NOT_YOURS,
    (409, "Not possible now: session started or over, too late, slot taken"),
    (503, "Temporal is unreachable; nothing was changed"),
    (504, "No answer in time; the change may still take effect"),
)

_NOT_STARTED = frozenset({SessionStatus.SCHEDULED})
_MAY_HAVE_BEEN_MISSED = frozenset({SessionStatus.IN_PROGRESS, SessionStatus.COMPLETED})


def _party(principal: Principal, row: ScheduledSession) -> Party:
    """The role the caller acts in; the most specific one when they hold several."""
    if is_requester(principal, row):
        return Party.REQUESTER
    if principal.has(Role.CONSULTANT) and row.consultant_user_id == principal.user_id:
        return Party.CONSULTANT
    if principal.is_operator:
        return Party.OPERATOR
    raise Forbidden("Only the session's learner, its consultant or an operator may change it.")


async def _detail(session: SessionDep, settings: Settings, row: ScheduledSession) -> SessionDetail:
    zones = await session_zones(session, [row], settings.default_learner_time_zone)
    return SessionDetail.of(row, zones[row.id])


def _require_status(row: ScheduledSession, allowed: frozenset[SessionStatus]) -> None:
    current = SessionStatus(row.status)
    if current not in allowed:
        raise InvalidState(f"The session is {current.value}.")


async def _change(
    session: SessionDep,
    container: ContainerDep,
    row: ScheduledSession,
    method: UpdateMethodMultiParam[[ConsultationWorkflow, MessageT], RequestDetails],
    message: MessageT,
) -> SessionDetail:
    """Send the change to the workflow of the session's request, then read the session
    its activity wrote (the workflow answers only after that transaction committed)."""
    session_id = row.id
    await consultation_workflow.update_after_reads(
        session, container.temporal, row.consultation_request_id, method, message
    )
    changed = await session.get(ScheduledSession, session_id, populate_existing=True)
    if changed is None:  # sessions are never deleted
        raise NotFound(f"Session {session_id} does not exist.")
    return await _detail(session, container.settings, changed)


@router.get(
    "",
    summary="List sessions",
    description=(
        "In start order. A learner sees their own sessions, a consultant theirs, an "
        "operator all. `from`/`to` bound the start time."
    ),
)
async def list_sessions(
    page: PageQuery,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    statuses: Annotated[
        list[SessionStatus] | None,
        Query(alias="status", description="Only these statuses (repeatable)."),
    ] = None,
    starts_from: Annotated[
        IsoAwareDatetime | None, Query(alias="from", description="Starting at or after this.")
    ] = None,
    starts_before: Annotated[
        IsoAwareDatetime | None, Query(alias="to", description="Starting before this.")
    ] = None,
) -> Page[SessionOut]:
    table = ScheduledSession
    query = (
        select(table)
        .where(visible_to(principal, ScheduledSession))
        .order_by(table.scheduled_start_time, table.id)
        .limit(page.limit + 1)
    )
    if statuses:
        query = query.where(table.status.in_([s.value for s in statuses]))
    if starts_from is not None:
        query = query.where(table.scheduled_start_time >= starts_from)
    if starts_before is not None:
        query = query.where(table.scheduled_start_time < starts_before)
    if page.cursor is not None:
        at, after_id = decode_time_cursor(page.cursor)
        query = query.where(tuple_(table.scheduled_start_time, table.id) > tuple_(at, after_id))
    rows = list((await session.scalars(query)).all())
    zones = await session_zones(session, rows, settings.default_learner_time_zone)
    return keyset_page(
        rows,
        page.limit,
        lambda row: SessionOut.of(row, zones[row.id]),
        lambda last: encode_time_cursor(last.scheduled_start_time, last.id),
    )


@router.get(
    "/{session_id}",
    summary="Get a session, with its meeting link",
    responses=problems(NOT_YOURS),
)
async def get_session(
    session_id: uuid.UUID, session: SessionDep, settings: SettingsDep, principal: SignedIn
) -> SessionDetail:
    return await _detail(
        session, settings, await visible_row(session, principal, ScheduledSession, session_id)
    )


@router.post(
    "/{session_id}/cancel",
    summary="Cancel a session",
    description=(
        "Frees the slot and cancels the meeting and the request. The learner may cancel "
        "until the cancellation cutoff before the start (409 `deadline-passed` after); "
        "the consultant must give a `reason`; operators any time before the start."
    ),
    responses={**WORKFLOW_PROBLEMS, **problems((422, "A consultant gave no reason"))},
)
async def cancel_session(
    session_id: uuid.UUID,
    session: SessionDep,
    principal: SignedIn,
    container: ContainerDep,
    body: Annotated[CancelBody | None, Body()] = None,
) -> SessionDetail:
    row = await visible_row(session, principal, ScheduledSession, session_id)
    party = _party(principal, row)
    reason = body.reason if body else None
    if party is Party.CONSULTANT and reason is None:
        raise Unprocessable("A consultant cancelling a session must give a reason.")
    _require_status(row, _NOT_STARTED)
    return await _change(
        session,
        container,
        row,
        ConsultationWorkflow.cancel,
        CancelRequest(party=party, actor_id=principal.user_id, reason=reason),
    )


@router.post(
    "/{session_id}/reschedule",
    summary="Move a session to another free slot of its consultant",
    description=(
        "The session moves to `start` in the slot (one the search offers), or without "
        "a `start` to the earliest start the slot offers (at least the minimum notice "
        "ahead). The learner may do so until the reschedule cutoff (the service type's, "
        "else its cancel cutoff, else `BOOKING_REQUESTER_CANCEL_CUTOFF`); the consultant "
        "and operators until the start. Every scheduling policy applies to the new time: "
        "409 `start-unavailable` names it in `reason` (`buffer`, `daily_cap`, "
        "`calendar_busy`, …), or 409 `scheduling-policy` in `policy` (`consultant-busy` "
        "for a linked calendar's busy time) when the workflow's hold finds it."
    ),
    responses={
        **WORKFLOW_PROBLEMS,
        **problems(
            (
                409,
                "Not possible now, the start is not free (`start-unavailable`), or a "
                "scheduling policy forbids it (`scheduling-policy`)",
            ),
            (422, "The slot is another consultant's, or the start is not an offered one"),
        ),
    },
)
async def reschedule_session(
    session_id: uuid.UUID,
    body: RescheduleBody,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    container: ContainerDep,
) -> SessionDetail:
    row = await visible_row(session, principal, ScheduledSession, session_id)
    party = _party(principal, row)
    slot = await session.get(AvailabilitySlot, body.slot_id)
    if slot is None:
        raise NotFound(f"Slot {body.slot_id} does not exist.")
    if slot.consultant_user_id != row.consultant_user_id:
        raise Unprocessable("A session moves only to a slot of its own consultant.")
    _require_status(row, _NOT_STARTED)
    if body.start is not None:
        await _require_start_on_offer(session, settings, row, slot, body.start)
    return await _change(
        session,
        container,
        row,
        ConsultationWorkflow.reschedule,
        RescheduleRequest(
            party=party, actor_id=principal.user_id, slot_id=body.slot_id, start=body.start
        ),
    )


async def _require_start_on_offer(
    session: SessionDep,
    settings: Settings,
    row: ScheduledSession,
    slot: AvailabilitySlot,
    start: datetime,
) -> None:
    """The same checks as a submitted start (the workflow's hold decides in the end)."""
    service_type = await session.get(ServiceType, row.consultation_service_type_id)
    consultant = await session.get(ConsultantProfile, row.consultant_user_id)
    if service_type is None or consultant is None:  # neither is ever deleted
        raise NotFound(f"Session {row.id} lost its service type or consultant.")
    await start_on_offer(
        session,
        consultant=consultant,
        start=start,
        rules=start_rules(service_type, settings, datetime.now(UTC)),
        policy=service_policy(service_type, settings),
        service_type_id=service_type.id,
        published_slot_id=slot.carved_from_slot_id or slot.id,
        request_id=row.consultation_request_id,
        stale_calendars_block=settings.calendar_stale_blocks_booking,
    )


@router.post(
    "/{session_id}/no-show",
    summary="Report that a party did not show up",
    description=(
        "By the session's consultant (the learner missed it) or an operator (either "
        "party), once the grace period after the start is over and until the report "
        "window after the end closes."
    ),
    responses=WORKFLOW_PROBLEMS,
)
async def report_no_show(
    session_id: uuid.UUID,
    body: NoShowBody,
    session: SessionDep,
    principal: ConsultantOrOperator,
    container: ContainerDep,
) -> SessionDetail:
    row = await visible_row(session, principal, ScheduledSession, session_id)
    party = _party(principal, row)
    if party is Party.CONSULTANT and body.party is not ParticipantRole.LEARNER:
        raise Forbidden("A consultant reports the learner only; ask an operator.")
    if party is Party.REQUESTER:
        raise Forbidden("Only the session's consultant or an operator reports a no-show.")
    _require_status(row, _MAY_HAVE_BEEN_MISSED)
    return await _change(
        session,
        container,
        row,
        ConsultationWorkflow.report_no_show,
        NoShowReport(party=party, actor_id=principal.user_id, absent=body.party),
    )
