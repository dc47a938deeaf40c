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

from api.errors import NotFound, RateLimited, SlotUnavailable, Unprocessable
from api.schemas.consultation_requests import ConsultationRequestCreate
from core.settings import Settings
from core.vocabulary import SlotStatus
from db import requests
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
    if latest_start < now + settings.minimum_notice:
        raise Unprocessable(
            f"Slot {slot.id} is too soon: sessions are booked at least "
            f"{_ahead(settings.minimum_notice)} ahead."
        )
    consultant = await session.get(ConsultantProfile, slot.consultant_user_id)
    required = service_type.required_specialization
    if consultant is None or not consultant.is_available_for_booking:
        raise Unprocessable(f"The consultant of slot {slot.id} is not taking bookings.")
    if required is not None and required not in consultant.specializations:
        raise Unprocessable(f"The consultant of slot {slot.id} does not offer {required!r}.")
    return Window(start=slot.start_time, end=slot.end_time)


def preferred_window(
    body: ConsultationRequestCreate, duration: timedelta, settings: Settings, now: datetime
) -> Window:
    if body.preferred_start is None or body.preferred_end is None:
        start = now + settings.minimum_notice
        return Window(start=start, end=start + settings.default_request_window)
    window = Window(start=body.preferred_start, end=body.preferred_end)
    if window.end - window.start > settings.search_max_window:
        raise Unprocessable(
            f"The preferred window spans at most {settings.search_max_window.days} days."
        )
    if window.end - window.start < duration:
        raise Unprocessable(f"A {_minutes(duration)} session does not fit into the window.")
    if window.end - duration < now + settings.minimum_notice:
        raise Unprocessable(
            "The preferred window ends too soon: sessions are booked at least "
            f"{_ahead(settings.minimum_notice)} ahead."
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
