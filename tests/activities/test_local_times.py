"""The events that tell the parties when they meet carry the session on both clocks:
a learner in Asia/Tokyo, a consultant in America/New_York, sessions on each side of
the US daylight-saving changes (New York falls back on 2026-11-01 and springs
forward on 2027-03-14; Tokyo keeps +09:00)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from activities.sessions import SessionActivities
from core.vocabulary import Party
from tests.activities.builders import Backend
from workflows.contracts.activity_io import RescheduleSessionInput, SessionReminderInput

TOKYO, NEW_YORK = "Asia/Tokyo", "America/New_York"
MINUTES = 45


def utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def local(zone: str, start: str, end: str, offset: str) -> dict[str, str]:
    return {"time_zone": zone, "start": start, "end": end, "utc_offset": offset}


async def booked_at(
    backend: Backend, start: datetime, *, learner_time_zone: str | None = TOKYO
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """A New York consultant's session at ``start`` for a learner of
    ``learner_time_zone``: (request, session, consultant, slot)."""
    service_type = await backend.service_type(minutes=MINUTES)
    consultant = await backend.consultant(time_zone=NEW_YORK)
    slot = await backend.slot(consultant, start, hours=1)
    request_id = await backend.request(
        service_type,
        window_start=start,
        window_end=start + timedelta(minutes=MINUTES),
        learner_time_zone=learner_time_zone,
    )
    reserved = await backend.book(request_id, slot, consultant, start, minutes=MINUTES)
    return request_id, reserved.session_id, consultant, slot


async def payload(backend: Backend, request_id: uuid.UUID, event_type: str) -> dict[str, Any]:
    (event,) = [e for e in await backend.events(request_id) if e.event_type == event_type]
    return dict(event.payload)


async def move(
    backend: Backend,
    request_id: uuid.UUID,
    session_id: uuid.UUID,
    consultant: uuid.UUID,
    from_slot: uuid.UUID,
    to: datetime,
) -> None:
    slot = await backend.slot(consultant, to, hours=1)
    held = await backend.hold(
        request_id, slot, consultant, not_before=to, attempt=None, minutes=MINUTES
    )
    assert held.held
    await backend.sessions.reschedule_session(
        RescheduleSessionInput(
            request_id=request_id,
            session_id=session_id,
            from_slot_id=from_slot,
            to_slot_id=slot,
            start=to,
            end=to + timedelta(minutes=MINUTES),
            party=Party.REQUESTER,
        )
    )


async def remind(
    backend: Backend, request_id: uuid.UUID, session_id: uuid.UUID, start: datetime
) -> None:
    await backend.sessions.send_reminder(
        SessionReminderInput(
            request_id=request_id, session_id=session_id, session_start=start, offset_seconds=3600
        )
    )


async def test_the_learner_zone_is_stored_with_the_request(backend: Backend) -> None:
    service_type = await backend.service_type()
    window = (utc(2027, 3, 12, 0), utc(2027, 3, 13, 0))
    tokyo = await backend.request(
        service_type, window_start=window[0], window_end=window[1], learner_time_zone=TOKYO
    )
    older = await backend.request(service_type, window_start=window[0], window_end=window[1])

    assert (await backend.request_row(tokyo)).learner_time_zone == TOKYO
    assert (await backend.request_row(older)).learner_time_zone is None  # as before zones


async def test_across_the_spring_forward(backend: Backend) -> None:
    before, after = utc(2027, 3, 12, 14), utc(2027, 3, 15, 13)  # both 09:00 in New York
    request_id, session_id, consultant, slot = await booked_at(backend, before)
    await move(backend, request_id, session_id, consultant, slot, after)
    await remind(backend, request_id, session_id, after)

    scheduled = await payload(backend, request_id, "session.scheduled")
    assert (scheduled["start"], scheduled["end"]) == (
        "2027-03-12T14:00:00+00:00",
        "2027-03-12T14:45:00+00:00",
    )
    assert scheduled["learner_local"] == local(
        TOKYO, "2027-03-12T23:00:00+09:00", "2027-03-12T23:45:00+09:00", "+09:00"
    )
    assert scheduled["consultant_local"] == local(
        NEW_YORK, "2027-03-12T09:00:00-05:00", "2027-03-12T09:45:00-05:00", "-05:00"
    )
    assert scheduled["consultant_id"] == str(consultant)  # the keys consumers had stay

    moved = await payload(backend, request_id, "session.rescheduled")
    assert (moved["previous_start"], moved["start"], moved["end"]) == (
        "2027-03-12T14:00:00+00:00",
        "2027-03-15T13:00:00+00:00",
        "2027-03-15T13:45:00+00:00",
    )
    assert moved["learner_local"] == local(
        TOKYO, "2027-03-15T22:00:00+09:00", "2027-03-15T22:45:00+09:00", "+09:00"
    )
    assert moved["consultant_local"] == local(
        NEW_YORK, "2027-03-15T09:00:00-04:00", "2027-03-15T09:45:00-04:00", "-04:00"
    )

    reminder = await payload(backend, request_id, "session.reminder")
    assert (reminder["start"], reminder["end"], reminder["seconds_before"]) == (
        "2027-03-15T13:00:00+00:00",
        "2027-03-15T13:45:00+00:00",
        3600,
    )
    assert reminder["learner_local"] == moved["learner_local"]
    assert reminder["consultant_local"] == moved["consultant_local"]


async def test_across_the_fall_back(backend: Backend) -> None:
    before, after = utc(2026, 10, 30, 13), utc(2026, 11, 2, 14)  # both 09:00 in New York
    request_id, session_id, consultant, slot = await booked_at(backend, before)
    await remind(backend, request_id, session_id, before)
    await move(backend, request_id, session_id, consultant, slot, after)

    scheduled = await payload(backend, request_id, "session.scheduled")
    reminder = await payload(backend, request_id, "session.reminder")
    for event in (scheduled, reminder):
        assert event["learner_local"] == local(
            TOKYO, "2026-10-30T22:00:00+09:00", "2026-10-30T22:45:00+09:00", "+09:00"
        )
        assert event["consultant_local"] == local(
            NEW_YORK, "2026-10-30T09:00:00-04:00", "2026-10-30T09:45:00-04:00", "-04:00"
        )
    moved = await payload(backend, request_id, "session.rescheduled")
    assert moved["learner_local"] == local(
        TOKYO, "2026-11-02T23:00:00+09:00", "2026-11-02T23:45:00+09:00", "+09:00"
    )
    assert moved["consultant_local"] == local(
        NEW_YORK, "2026-11-02T09:00:00-05:00", "2026-11-02T09:45:00-05:00", "-05:00"
    )


async def test_a_request_from_before_zones_reads_as_the_default(backend: Backend) -> None:
    backend.sessions = SessionActivities(
        backend.session_factory, default_learner_time_zone="Europe/Berlin"
    )
    request_id, *_ = await booked_at(backend, utc(2027, 3, 12, 14), learner_time_zone=None)

    scheduled = await payload(backend, request_id, "session.scheduled")
    assert scheduled["learner_local"] == local(
        "Europe/Berlin", "2027-03-12T15:00:00+01:00", "2027-03-12T15:45:00+01:00", "+01:00"
    )
