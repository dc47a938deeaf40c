"""A consultant's availability: publish slots (one, many or a recurring rule), list,
open/close and delete free ones.

The consultant (their own calendar) and operators manage it. Anyone else signed in
may list the ``available`` slots of a consultant who takes bookings, which is no more
than the search shows them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from api.audit_trail import actor_of
from api.auth import Principal, Role
from api.deps import CurrentPrincipal, SessionDep, SettingsDep, SignedIn
from api.errors import Conflict, Forbidden, NotFound, SlotConflict, Unprocessable
from api.openapi import problems
from api.pagination import Page, PageQuery, decode_slot_cursor, encode_slot_cursor, keyset_page
from api.schemas.availability import (
    CREATE_EXAMPLES,
    OVERLAP_409,
    AvailabilityCreate,
    ConflictingSlot,
    RecurringSlots,
    SlotBatch,
    SlotOut,
    SlotsCreated,
    SlotStatusChange,
    SlotWindow,
    TimeRangeOut,
)
from api.schemas.fields import IsoAwareDatetime
from core.settings import Settings
from core.vocabulary import AuditAction, AuditTarget, SlotStatus
from db import audit
from db.availability.recurrence import Recurrence, RecurrenceError, expand_recurrence, load_zone
from db.availability.slots import (
    ConsultantNotFoundError,
    SlotNotFoundError,
    SlotNotFreeError,
    SlotOverlapError,
    TimeRange,
    change_free_status,
    create_slots,
    delete_free_slot,
    list_slots,
)
from db.models import AvailabilitySlot, ConsultantProfile

router = APIRouter(prefix="/v1/consultants/{user_id}/availability", tags=["availability"])

CONFLICTS_SHOWN = 50  # a year-long rule can hit hundreds; the count says how many


_NOT_MANAGER = (403, "Not this consultant, nor an operator")

WindowStart = Annotated[
    IsoAwareDatetime | None,
    Query(alias="from", description="Only slots ending after this instant (with an offset)."),
]
WindowEnd = Annotated[
    IsoAwareDatetime | None,
    Query(alias="to", description="Only slots starting before this instant (with an offset)."),
]


# --- Access -------------------------------------------------------------------------


def _manages(principal: Principal, user_id: uuid.UUID) -> bool:
    return principal.is_operator or (
        principal.has(Role.CONSULTANT) and principal.user_id == user_id
    )


def _require_manager(principal: Principal, user_id: uuid.UUID) -> None:
    if not _manages(principal, user_id):
        raise Forbidden(
            "Only the consultant themselves or an operator may change this availability."
        )


async def _profile(session: SessionDep, user_id: uuid.UUID) -> ConsultantProfile:
    profile = await session.get(ConsultantProfile, user_id)
    if profile is None:
        raise NotFound(f"Consultant {user_id} has no profile.")
    return profile


def _visible_statuses(
    principal: Principal, profile: ConsultantProfile, requested: list[SlotStatus] | None
) -> list[SlotStatus] | None:
    """The statuses the caller may list: all for managers, else only ``available``."""
    if _manages(principal, profile.consultant_user_id):
        return requested
    if not profile.is_available_for_booking:
        raise Forbidden(f"Consultant {profile.consultant_user_id} is not taking bookings.")
    if requested and set(requested) != {SlotStatus.AVAILABLE}:
        raise Forbidden("Only the consultant and operators see slots other than available ones.")
    return [SlotStatus.AVAILABLE]


# --- Creating -----------------------------------------------------------------------


def _requested_ranges(
    body: SlotWindow | SlotBatch | RecurringSlots, profile: ConsultantProfile, settings: Settings
) -> list[TimeRange]:
    if isinstance(body, SlotWindow):
        return [TimeRange(body.start_time, body.end_time)]
    if isinstance(body, SlotBatch):
        if len(body.slots) > settings.max_slots_per_request:
            raise Unprocessable(
                f"At most {settings.max_slots_per_request} slots can be created at once."
            )
        return [TimeRange(slot.start_time, slot.end_time) for slot in body.slots]
    return _expand(body, profile, settings)


def _expand(
    body: RecurringSlots, profile: ConsultantProfile, settings: Settings
) -> list[TimeRange]:
    zone_name = body.time_zone or profile.time_zone
    zone = load_zone(zone_name)
    if zone is None:
        raise Unprocessable(f"The profile's time zone {zone_name!r} is unknown; pass time_zone.")
    recurrence = Recurrence(
        rule=body.rrule,
        start_local=body.start_local,
        duration=timedelta(minutes=body.duration_minutes),
        zone=zone,
        count=body.count,
        until=body.until,
    )
    try:
        return expand_recurrence(
            recurrence,
            horizon=settings.recurrence_max_horizon,
            max_occurrences=settings.max_slots_per_request,
        )
    except RecurrenceError as exc:
        raise Unprocessable(str(exc)) from exc


def _overlap_problem(error: SlotOverlapError) -> SlotConflict:
    conflicts = error.conflicts
    if conflicts:
        detail = f"{len(conflicts)} existing slot(s) overlap the new availability"
    elif error.in_request:
        detail = "The new slots overlap each other"
    else:  # the slot we collided with changed before we could look it up
        detail = "The new availability overlapped a slot that has since changed; retry"
    return SlotConflict(
        detail + "; nothing was created.",
        conflicts=[
            ConflictingSlot.model_validate(slot).model_dump(mode="json")
            for slot in conflicts[:CONFLICTS_SHOWN]
        ],
        conflict_count=len(conflicts),
        overlapping_in_request=[
            TimeRangeOut(start_time=r.start, end_time=r.end).model_dump(mode="json")
            for r in error.in_request[:CONFLICTS_SHOWN]
        ],
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Publish availability: one slot, many, or a recurring rule",
    description=(
        "All slots are created in one transaction or none is. Overlaps with existing "
        "slots or among the new ones are refused with 409; `conflicts` names the "
        "existing slots. Slots last at most 24 hours."
    ),
    responses={**problems(_NOT_MANAGER, 404), **OVERLAP_409},
)
async def create_availability(
    user_id: uuid.UUID,
    body: Annotated[AvailabilityCreate, Body(openapi_examples=CREATE_EXAMPLES)],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> SlotsCreated:
    _require_manager(principal, user_id)
    profile = await _profile(session, user_id)
    ranges = _requested_ranges(body, profile, settings)
    try:
        slots = await create_slots(session, user_id, ranges)
    except SlotOverlapError as exc:
        raise _overlap_problem(exc) from exc
    except ConsultantNotFoundError as exc:
        raise NotFound(f"Consultant {user_id} has no profile.") from exc
    published = [{"id": str(slot.id), **audit.snapshot(slot)} for slot in slots]
    await audit.record(
        session,
        actor=actor_of(principal),
        action=AuditAction.AVAILABILITY_PUBLISHED,
        target_type=AuditTarget.CONSULTANT_AVAILABILITY,
        target_id=user_id,
        changed={"slots": {"before": None, "after": published}},
    )
    await session.commit()
    return SlotsCreated(items=[SlotOut.model_validate(slot) for slot in slots])


# --- Reading ------------------------------------------------------------------------


@router.get(
    "",
    summary="List a consultant's slots",
    description=(
        "Slots overlapping [`from`, `to`) in start order. The consultant and operators "
        "see every status; anyone else only the available slots of a consultant who "
        "takes bookings."
    ),
    responses=problems(
        (403, "Slots other than available ones, or a consultant not taking bookings"), 404
    ),
)
async def list_availability(
    page: PageQuery,
    user_id: uuid.UUID,
    session: SessionDep,
    principal: SignedIn,
    window_start: WindowStart = None,
    window_end: WindowEnd = None,
    statuses: Annotated[
        list[SlotStatus] | None,
        Query(alias="status", description="Repeat to list several statuses."),
    ] = None,
) -> Page[SlotOut]:
    if window_start and window_end and window_end <= window_start:
        raise Unprocessable("`to` must be after `from`.")
    profile = await _profile(session, user_id)
    visible = _visible_statuses(principal, profile, statuses)
    rows = await list_slots(
        session,
        user_id,
        window=(window_start, window_end),
        statuses=visible,
        after=decode_slot_cursor(page.cursor) if page.cursor else None,
        limit=page.limit + 1,
    )
    return keyset_page(
        rows,
        page.limit,
        SlotOut.model_validate,
        lambda last: encode_slot_cursor(last.start_time, last.id),
    )


# --- Changing -----------------------------------------------------------------------


def _not_free(slot_id: uuid.UUID, error: SlotNotFreeError) -> Conflict:
    return Conflict(
        f"Slot {slot_id} is {error.slot.status}: it belongs to a consultation; cancel or "
        "reschedule that instead.",
        slot_status=error.slot.status,
    )


@router.patch(
    "/{slot_id}",
    summary="Open or close a free slot",
    responses=problems(_NOT_MANAGER, 404, (409, "The slot is held or booked")),
)
async def change_slot_status(
    user_id: uuid.UUID,
    slot_id: uuid.UUID,
    body: SlotStatusChange,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> SlotOut:
    _require_manager(principal, user_id)
    before = await audit.locked_snapshot(session, AvailabilitySlot, slot_id)
    try:
        slot = await change_free_status(session, user_id, slot_id, SlotStatus(body.status))
    except SlotNotFoundError as exc:
        raise NotFound(f"Consultant {user_id} has no slot {slot_id}.") from exc
    except SlotNotFreeError as exc:
        raise _not_free(slot_id, exc) from exc
    await audit.record(
        session,
        actor=actor_of(principal),
        action=AuditAction.AVAILABILITY_SLOT_CHANGED,
        target_type=AuditTarget.AVAILABILITY_SLOT,
        target_id=slot_id,
        changed=audit.changes(before, audit.snapshot(slot)),
    )
    await session.commit()
    return SlotOut.model_validate(slot)


@router.delete(
    "/{slot_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a free slot",
    responses=problems(_NOT_MANAGER, 404, (409, "The slot is held or booked")),
)
async def delete_slot(
    user_id: uuid.UUID, slot_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    _require_manager(principal, user_id)
    before = await audit.locked_snapshot(session, AvailabilitySlot, slot_id)
    try:
        await delete_free_slot(session, user_id, slot_id)
    except SlotNotFoundError as exc:
        raise NotFound(f"Consultant {user_id} has no slot {slot_id}.") from exc
    except SlotNotFreeError as exc:
        raise _not_free(slot_id, exc) from exc
    await audit.record(
        session,
        actor=actor_of(principal),
        action=AuditAction.AVAILABILITY_SLOT_DELETED,
        target_type=AuditTarget.AVAILABILITY_SLOT,
        target_id=slot_id,
        changed=audit.changes(before, None),
    )
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
