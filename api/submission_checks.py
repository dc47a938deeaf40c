"""What a submission names must exist and fit before its workflow is started.

Refusing here is cheap and precise (404 for what does not exist, 409 for a slot
already taken, 422 for what cannot work); the workflow would otherwise only find
out later and reject the request after the learner had left.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import (
    NotFound,
    RateLimited,
    SlotUnavailable,
    StartOffGrid,
    StartUnavailable,
    Unprocessable,
)
from api.schemas.consultation_requests import ConsultationRequestCreate
from core.settings import Settings
from core.vocabulary import SlotStatus
from db import requests
from db.availability.busy import busy_of_consultant
from db.availability.caps import caps_of, ledgers
from db.availability.offer import (
    FreeSlot,
    Refusal,
    StartRules,
    buffered,
    consultant_zone,
    first_offered,
    grid_for,
    refusal,
)
from db.availability.policy import ServicePolicy, minutes
from db.availability.slots import TimeRange, find_overlapping
from db.models import AvailabilitySlot, ConsultantProfile, ServiceType

# A learner over the cap may submit again once a request ends; a minute is a fair hint.
OPEN_REQUESTS_RETRY_AFTER_SECONDS = 60


@dataclass(frozen=True)
class Window:
    """When the session may take place."""

    start: datetime
    end: datetime


async def bookable_service_type(session: AsyncSession, service_type_id: uuid.UUID) -> ServiceType:
    service_type = await session.get(ServiceType, service_type_id)
    if service_type is None:
        raise NotFound(f"Service type {service_type_id} does not exist.")
    if not service_type.is_active:
        raise Unprocessable(f"Service type {service_type_id} is not offered any more.")
    return service_type


def start_interval_minutes(service_type: ServiceType, settings: Settings) -> int:
    """Minutes between the starts offered for ``service_type`` (its own step, or the
    service-wide default)."""
    return service_type.start_interval_minutes or settings.default_start_interval_minutes


async def within_open_request_cap(session: AsyncSession, requester_id: uuid.UUID, cap: int) -> None:
    """A learner may have at most ``cap`` requests in flight, so that nobody can hold a
    consultant's whole week. This count only refuses early and cheaply: concurrent
    submissions can all pass it, so ``persist_request`` counts again, under a lock on
    the learner, where the request is stored."""
    open_requests = await requests.count_open_requests(session, requester_id)
    if open_requests >= cap:
        raise open_request_limit(open_requests, cap)


def open_request_limit(open_requests: int, cap: int) -> RateLimited:
    return RateLimited(
        f"You already have {open_requests} open consultation requests (the limit is "
        f"{cap}); wait until one is completed, or cancel one.",
        headers={"Retry-After": str(OPEN_REQUESTS_RETRY_AFTER_SECONDS)},
        open_requests=open_requests,
        limit=cap,
    )


async def existing_consultant(session: AsyncSession, consultant_id: uuid.UUID) -> None:
    if await session.get(ConsultantProfile, consultant_id) is None:
        raise NotFound(f"Consultant {consultant_id} has no profile.")


async def slot_window(
    session: AsyncSession,
    body: ConsultationRequestCreate,
    service_type: ServiceType,
    settings: Settings,
    now: datetime,
) -> Window:
    """The requested slot bounds the session; it must be free, long enough, not too
    soon, and its consultant able to take this service type."""
    assert body.slot_id is not None
    slot = await session.get(AvailabilitySlot, body.slot_id)
    if slot is None:
        raise NotFound(f"Slot {body.slot_id} does not exist.")
    if body.preferred_consultant_id not in (None, slot.consultant_user_id):
        raise Unprocessable("The slot belongs to another consultant than the preferred one.")
    if slot.status != SlotStatus.AVAILABLE.value:
        raise SlotUnavailable(f"Slot {slot.id} is {slot.status}; pick another time.")
    duration = timedelta(minutes=service_type.default_duration_minutes)
    latest_start = slot.end_time - duration
    if latest_start < slot.start_time:
        raise Unprocessable(f"A {_minutes(duration)} session does not fit into slot {slot.id}.")
    policy = service_policy(service_type, settings)
    if latest_start < now + policy.minimum_notice:
        raise Unprocessable(
            f"Slot {slot.id} is too soon: sessions are booked at least "
            f"{_ahead(policy.minimum_notice)} ahead."
        )
    starts_by = policy.starts_by(now)
    if starts_by is not None and slot.start_time > starts_by:
        raise StartUnavailable(
            f"Slot {slot.id} is beyond the booking horizon: sessions of this type are "
            f"booked at most {_days(policy.horizon)} ahead.",
            reason=Refusal.BEYOND_HORIZON.value,
        )
    consultant = await _taking_bookings(
        session, slot.consultant_user_id, service_type, f"The consultant of slot {slot.id}"
    )
    rules = start_rules(service_type, settings, now).with_buffers(*consultant_buffers(consultant))
    if first_offered(FreeSlot(slot.start_time, slot.end_time, consultant.time_zone), rules) is None:
        grid = grid_for(rules, consultant.time_zone).describe()
        raise Unprocessable(
            f"No start of a {_minutes(duration)} session fits into slot {slot.id} "
            f"(starts are {grid})."
        )
    return Window(start=slot.start_time, end=slot.end_time)


async def chosen_start_window(
    session: AsyncSession,
    body: ConsultationRequestCreate,
    service_type: ServiceType,
    settings: Settings,
    now: datetime,
) -> Window:
    """A start the learner chose, with the slot it was offered in or its consultant:
    it must be one the search offers (on the grid, not too soon) and free (inside one
    free piece of that slot, or of the consultant's time). The window is exactly the
    session."""
    assert body.start is not None
    published: uuid.UUID | None = None
    if body.slot_id is not None:
        slot = await session.get(AvailabilitySlot, body.slot_id)
        if slot is None:
            raise NotFound(f"Slot {body.slot_id} does not exist.")
        consultant_id = slot.consultant_user_id
        published = slot.carved_from_slot_id or slot.id
        if body.consultant_id not in (None, consultant_id):
            raise Unprocessable(f"Slot {slot.id} belongs to another consultant.")
    else:
        assert body.consultant_id is not None
        consultant_id = body.consultant_id
        if await session.get(ConsultantProfile, consultant_id) is None:
            raise NotFound(f"Consultant {consultant_id} has no profile.")
    if body.preferred_consultant_id not in (None, consultant_id):
        raise Unprocessable("The start belongs to another consultant than the preferred one.")
    consultant = await _taking_bookings(
        session, consultant_id, service_type, f"Consultant {consultant_id}"
    )
    return await start_on_offer(
        session,
        consultant=consultant,
        start=body.start,
        rules=start_rules(service_type, settings, now),
        policy=service_policy(service_type, settings),
        service_type_id=service_type.id,
        published_slot_id=published,
        stale_calendars_block=settings.calendar_stale_blocks_booking,
    )


async def start_on_offer(
    session: AsyncSession,
    *,
    consultant: ConsultantProfile,
    start: datetime,
    rules: StartRules,
    policy: ServicePolicy,
    service_type_id: uuid.UUID,
    published_slot_id: uuid.UUID | None,
    request_id: uuid.UUID | None = None,
    stale_calendars_block: bool = False,
) -> Window:
    """The session at ``start`` if the consultant offers it under ``rules`` (and their
    own buffers, caps and busy time; within the slot published as
    ``published_slot_id``, if given); else the problem saying why: ``start-off-grid`` (422) or
    ``start-unavailable`` (409, with a ``reason``). ``request_id``: a request moving
    its session (its own booking does not count towards the caps)."""
    rules = rules.with_buffers(*consultant_buffers(consultant))
    end = start + rules.duration
    zone = consultant.time_zone
    why = refusal(start, rules, time_zone=zone)
    if why is Refusal.OFF_GRID:
        raise StartOffGrid(
            f"{start.isoformat()} is not one of the offered starts: they are "
            f"{grid_for(rules, zone).describe()}.",
            start_interval_minutes=rules.step_minutes,
            time_zone=zone,
        )
    if why is Refusal.BEYOND_HORIZON:
        raise StartUnavailable(
            f"{start.isoformat()} is beyond the booking horizon: sessions of this type are "
            f"booked at most {_days(policy.horizon)} ahead.",
            reason=why.value,
        )
    if why is not None:
        raise StartUnavailable(
            f"{start.isoformat()} is too soon: sessions are booked at least "
            f"{_ahead(policy.minimum_notice)} ahead.",
            reason="too_soon",
        )
    taken_from, taken_until = buffered(start, end, rules)
    pieces = [
        piece
        for piece in await find_overlapping(
            session, consultant.consultant_user_id, [TimeRange(taken_from, taken_until)]
        )
        if published_slot_id in (None, piece.carved_from_slot_id or piece.id)
    ]
    reason = _why_not_free(pieces, start, end, taken_from, taken_until)
    if reason is not None:
        raise StartUnavailable(_NOT_FREE[reason].format(start=start.isoformat()), reason=reason)
    capped = await _cap_refusal(session, consultant, start, service_type_id, request_id)
    if capped is not None:
        raise StartUnavailable(
            f"The consultant takes no more sessions at {start.isoformat()}: {capped.explanation}.",
            reason=capped.value,
        )
    consultant_id = consultant.consultant_user_id
    busy = await busy_of_consultant(
        session,
        consultant_id,
        taken_from,
        taken_until,
        linked_calendars=consultant.linked_calendars,
        stale_blocks=stale_calendars_block,
    )
    if busy.overlaps(consultant_id, taken_from, taken_until):
        raise StartUnavailable(
            f"The consultant is not free at {start.isoformat()}: "
            f"{Refusal.CALENDAR_BUSY.explanation}.",
            reason=Refusal.CALENDAR_BUSY.value,
        )
    return Window(start=start, end=end)


def consultant_buffers(consultant: ConsultantProfile) -> tuple[timedelta, timedelta]:
    return minutes(consultant.buffer_before_minutes), minutes(consultant.buffer_after_minutes)


async def _cap_refusal(
    session: AsyncSession,
    consultant: ConsultantProfile,
    start: datetime,
    service_type_id: uuid.UUID,
    request_id: uuid.UUID | None,
) -> Refusal | None:
    """The caps' verdict as a hold would count them now (the hold decides in the end)."""
    consultant_id = consultant.consultant_user_id
    found = await caps_of(session, (consultant_id,), service_type_id)
    if not found:
        return None
    zone = consultant_zone(consultant.time_zone)
    ledger = (
        await ledgers(
            session,
            found,
            {consultant_id: zone},
            start,
            start,
            service_type_id=service_type_id,
            excluding_request=request_id,
        )
    )[consultant_id]
    return ledger.refusal(start)


_NOT_FREE = {
    "taken": "The consultant is already booked (or a booking is being confirmed) at "
    "{start}; pick another start.",
    "unavailable": "The consultant marked the time at {start} unavailable.",
    "outside_slot": "A session at {start} does not lie within one free slot of the "
    "consultant (the slot given, if any).",
    "buffer": "The time the consultant keeps free around a session at {start} is not "
    "free (another session's buffer, or outside their published time).",
}


def _why_not_free(
    pieces: list[AvailabilitySlot],
    start: datetime,
    end: datetime,
    taken_from: datetime,
    taken_until: datetime,
) -> str | None:
    """``pieces``: the slots overlapping the session with its buffers."""
    session_pieces = [p for p in pieces if p.start_time < end and p.end_time > start]
    statuses = {piece.status for piece in session_pieces}
    if statuses & {SlotStatus.HELD.value, SlotStatus.BOOKED.value}:
        return "taken"
    if SlotStatus.UNAVAILABLE.value in statuses:
        return "unavailable"
    containing = [p for p in session_pieces if p.start_time <= start and p.end_time >= end]
    if not containing:
        return "outside_slot"
    (piece,) = containing
    if piece.status != SlotStatus.AVAILABLE.value:
        return "unavailable"
    if piece.start_time <= taken_from and piece.end_time >= taken_until:
        return None
    return "buffer"


def service_policy(service_type: ServiceType, settings: Settings) -> ServicePolicy:
    """The type's scheduling policy, the settings filling what it leaves open."""
    return ServicePolicy.of(
        service_type,
        minimum_notice=settings.minimum_notice,
        cancel_cutoff=settings.requester_cancel_cutoff,
    )


def start_rules(service_type: ServiceType, settings: Settings, now: datetime) -> StartRules:
    """What a start of ``service_type`` booked ``now`` must satisfy (besides the
    consultant's own buffers and caps)."""
    policy = service_policy(service_type, settings)
    rules = StartRules(
        duration=timedelta(minutes=service_type.default_duration_minutes),
        step_minutes=start_interval_minutes(service_type, settings),
        not_before=now + policy.minimum_notice,
    )
    return policy.rules(rules, now=now)


async def _taking_bookings(
    session: AsyncSession, consultant_id: uuid.UUID, service_type: ServiceType, who: str
) -> ConsultantProfile:
    consultant = await session.get(ConsultantProfile, consultant_id)
    required = service_type.required_specialization
    if consultant is None or not consultant.is_available_for_booking:
        raise Unprocessable(f"{who} is not taking bookings.")
    if required is not None and required not in consultant.specializations:
        raise Unprocessable(f"{who} does not offer {required!r}.")
    return consultant


def preferred_window(
    body: ConsultationRequestCreate,
    duration: timedelta,
    settings: Settings,
    now: datetime,
    policy: ServicePolicy | None = None,
) -> Window:
    """The window the session may take place in; the type's horizon caps it (a
    window starting beyond it is refused)."""
    window = _asked_window(body, duration, settings, now, policy)
    starts_by = None if policy is None else policy.starts_by(now)
    if starts_by is None or window.end - duration <= starts_by:
        return window
    if window.start > starts_by:
        raise StartUnavailable(
            "The preferred window is beyond the booking horizon: sessions of this type "
            f"are booked at most {_days(policy.horizon if policy else None)} ahead.",
            reason=Refusal.BEYOND_HORIZON.value,
        )
    return Window(start=window.start, end=starts_by + duration)


def _asked_window(
    body: ConsultationRequestCreate,
    duration: timedelta,
    settings: Settings,
    now: datetime,
    policy: ServicePolicy | None,
) -> Window:
    notice = settings.minimum_notice if policy is None else policy.minimum_notice
    if body.preferred_start is None or body.preferred_end is None:
        start = now + notice
        return Window(start=start, end=start + settings.default_request_window)
    window = Window(start=body.preferred_start, end=body.preferred_end)
    if window.end - window.start > settings.search_max_window:
        raise Unprocessable(
            f"The preferred window spans at most {settings.search_max_window.days} days."
        )
    if window.end - window.start < duration:
        raise Unprocessable(f"A {_minutes(duration)} session does not fit into the window.")
    if window.end - duration < now + notice:
        raise Unprocessable(
            "The preferred window ends too soon: sessions are booked at least "
            f"{_ahead(notice)} ahead."
        )
    return window


def _minutes(duration: timedelta) -> str:
    return f"{int(duration.total_seconds() // 60)}-minute"


def _ahead(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _days(duration: timedelta | None) -> str:
    days = 0 if duration is None else duration.days
    return f"{days} day" if days == 1 else f"{days} days"
