"""Reserving (with the carve), moving, cancelling and running a session."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities import UNEXPECTED_STATE
from core.vocabulary import (
    CancellationReason,
    ErrorType,
    ParticipantRole,
    Party,
    SessionStatus,
    StatusReason,
)
from db.availability.search import SearchCriteria, search_bookable_times
from db.models import ScheduledSession
from tests.activities.builders import Backend, future
from workflows.contracts.activity_io import (
    Attendance,
    CancelSessionInput,
    NoShowInput,
    RescheduleSessionInput,
    ReserveInput,
    SessionReminderInput,
    SessionTransitionInput,
)


async def booked(backend: Backend) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """A request booked 10:00-11:00 out of a 09:00-12:00 slot:
    (request, session, consultant, slot)."""
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    slot = await backend.slot(consultant, future(hour=9), hours=3)
    request_id = await backend.request(
        service_type_id, window_start=future(hour=0), window_end=future(9)
    )
    reserved = await backend.book(request_id, slot, consultant, future(hour=10))
    return request_id, reserved.session_id, consultant, slot


async def test_reserve_carves_the_slot_and_schedules_the_request(backend: Backend) -> None:
    request_id, session_id, consultant, slot = await booked(backend)

    pieces = [(s.start_time, s.end_time, s.status) for s in await backend.slots_of(consultant)]
    assert pieces == [
        (future(hour=9), future(hour=10), "available"),
        (future(hour=10), future(hour=11), "booked"),
        (future(hour=11), future(hour=12), "available"),
    ]
    booked_piece = (await backend.slots_of(consultant))[1]
    assert booked_piece.id == slot
    assert booked_piece.held_by_request_id is None
    session = await backend.session_row(session_id)
    assert (session.status, session.availability_slot_id) == ("scheduled", slot)
    assert (session.scheduled_start_time, session.scheduled_end_time) == (
        future(hour=10),
        future(hour=11),
    )
    request = await backend.request_row(request_id)
    assert (request.status, request.scheduled_session_id) == ("scheduled", session_id)
    assert request.confirmation_deadline is None
    assert (await backend.event_types(request_id))[-1] == "session.scheduled"


async def test_reserve_is_idempotent(backend: Backend) -> None:
    request_id, session_id, consultant, slot = await booked(backend)
    request = await backend.request_row(request_id)

    again = await backend.sessions.reserve(
        ReserveInput(
            request_id=request_id,
            session_id=uuid.uuid4(),  # even a fresh id finds the existing session
            slot_id=slot,
            consultant_id=consultant,
            requester_id=request.requester_user_id,
            service_type_id=request.consultation_service_type_id,
            start=future(hour=10),
            end=future(hour=11),
        )
    )

    assert again.session_id == session_id
    assert await backend.count(ScheduledSession) == 1
    assert len(await backend.slots_of(consultant)) == 3
    assert (await backend.event_types(request_id)).count("session.scheduled") == 1


async def test_reserve_without_the_hold_is_refused(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    slot = await backend.slot(consultant, future())
    request_id = await backend.request(service_type_id, window_start=future(), window_end=future(9))
    request = await backend.request_row(request_id)

    with pytest.raises(ApplicationError) as refused:
        await backend.sessions.reserve(
            ReserveInput(
                request_id=request_id,
                session_id=uuid.uuid4(),
                slot_id=slot,
                consultant_id=consultant,
                requester_id=request.requester_user_id,
                service_type_id=request.consultation_service_type_id,
                start=future(),
                end=future() + timedelta(hours=1),
            )
        )
    assert refused.value.type == ErrorType.HOLD_LOST
    assert refused.value.non_retryable
    assert await backend.count(ScheduledSession) == 0


async def test_reschedule_books_the_new_slot_and_frees_the_old(backend: Backend) -> None:
    request_id, session_id, consultant, old_slot = await booked(backend)
    new_start = future(4, hour=14)
    new_slot = await backend.slot(consultant, new_start, hours=2)
    held = await backend.hold(request_id, new_slot, consultant, not_before=new_start, attempt=None)
    assert held.held
    move = RescheduleSessionInput(
        request_id=request_id,
        session_id=session_id,
        from_slot_id=old_slot,
        to_slot_id=new_slot,
        start=new_start,
        end=new_start + timedelta(hours=1),
        party=Party.REQUESTER,
    )

    await backend.sessions.reschedule_session(move)
    await backend.sessions.reschedule_session(move)

    session = await backend.session_row(session_id)
    assert (session.availability_slot_id, session.scheduled_start_time) == (new_slot, new_start)
    assert session.calendar_sequence == 1  # once, although the move ran twice
    pieces = [
        (s.id, s.start_time, s.end_time, s.status) for s in await backend.slots_of(consultant)
    ]
    assert pieces[0] == (old_slot, future(hour=9), future(hour=12), "available")  # whole again
    assert pieces[1][0] == new_slot
    assert [p[1:] for p in pieces[1:]] == [
        (new_start, new_start + timedelta(hours=1), "booked"),
        (new_start + timedelta(hours=1), new_start + timedelta(hours=2), "available"),
    ]
    moved = [e for e in await backend.events(request_id) if e.event_type == "session.rescheduled"]
    assert len(moved) == 1
    assert moved[0].payload["previous_start"] == future(hour=10).isoformat()


async def test_cancel_frees_the_slot_and_cancels_the_request(backend: Backend) -> None:
    request_id, session_id, consultant, slot = await booked(backend)
    cancel = CancelSessionInput(
        request_id=request_id,
        session_id=session_id,
        party=Party.CONSULTANT,
        actor_id=consultant,
        reason=CancellationReason.ILLNESS,
        session_status=SessionStatus.CANCELLED_BY_CONSULTANT,
        status_reason=StatusReason.CANCELLED_BY_CONSULTANT,
    )

    await backend.sessions.cancel_session(cancel)
    await backend.sessions.cancel_session(cancel)

    session = await backend.session_row(session_id)
    assert (session.status, session.cancellation_reason, session.cancelled_by) == (
        "cancelled_by_consultant",
        "illness",
        "consultant",
    )
    assert session.calendar_sequence == 1  # once, although the cancel ran twice
    pieces = [
        (s.id, s.start_time, s.end_time, s.status) for s in await backend.slots_of(consultant)
    ]
    assert pieces == [(slot, future(hour=9), future(hour=12), "available")]  # merged back
    request = await backend.request_row(request_id)
    assert (request.status, request.status_reason) == ("cancelled", "cancelled_by_consultant")
    types = await backend.event_types(request_id)
    assert types.count("session.cancelled") == types.count("consultation.cancelled") == 1


async def test_start_and_complete_record_the_attendance(backend: Backend) -> None:
    request_id, session_id, _, _ = await booked(backend)
    joined = future(hour=10) - timedelta(minutes=2)
    attendance = Attendance(
        meeting_started_at=joined, learner_joined_at=joined, consultant_joined_at=joined
    )
    start = SessionTransitionInput(
        request_id=request_id, session_id=session_id, at=future(hour=10), attendance=attendance
    )

    await backend.sessions.start_session(start)
    await backend.sessions.start_session(start)
    ended = future(hour=10, days=3) + timedelta(minutes=55)
    await backend.sessions.complete_session(
        SessionTransitionInput(
            request_id=request_id,
            session_id=session_id,
            at=ended,
            attendance=Attendance(meeting_ended_at=ended),
        )
    )

    session = await backend.session_row(session_id)
    assert session.status == "completed"
    assert (session.actual_start_time, session.actual_end_time) == (joined, ended)
    assert session.learner_joined_at == session.consultant_joined_at == joined
    assert (await backend.request_row(request_id)).status == "completed"
    types = await backend.event_types(request_id)
    assert types[-2:] == ["session.started", "session.completed"]


async def test_a_no_show_reported_after_completion_keeps_the_request_completed(
    backend: Backend,
) -> None:
    request_id, session_id, consultant, _ = await booked(backend)
    transition = SessionTransitionInput(
        request_id=request_id, session_id=session_id, at=future(), attendance=Attendance()
    )
    await backend.sessions.complete_session(transition)

    await backend.sessions.mark_no_show(
        NoShowInput(
            request_id=request_id,
            session_id=session_id,
            absent=ParticipantRole.LEARNER,
            reported_by=Party.CONSULTANT,
            actor_id=consultant,
            attendance=Attendance(consultant_joined_at=future()),
        )
    )

    session = await backend.session_row(session_id)
    assert (session.status, session.consultant_joined_at) == ("no_show_user", future())
    request = await backend.request_row(request_id)
    assert (request.status, request.status_reason) == ("completed", "no_show_user")
    no_show = (await backend.events(request_id))[-1]
    assert no_show.payload["absent"] == "learner"


async def test_an_unexpected_state_is_a_retryable_error(backend: Backend) -> None:
    request_id, session_id, _, _ = await booked(backend)
    await backend.sessions.complete_session(
        SessionTransitionInput(
            request_id=request_id, session_id=session_id, at=future(), attendance=Attendance()
        )
    )

    with pytest.raises(ApplicationError) as refused:
        await backend.sessions.start_session(
            SessionTransitionInput(
                request_id=request_id, session_id=session_id, at=future(), attendance=Attendance()
            )
        )
    assert refused.value.type == UNEXPECTED_STATE
    assert not refused.value.non_retryable


async def test_reminders_are_sent_once_and_only_for_the_current_time(backend: Backend) -> None:
    request_id, session_id, _, _ = await booked(backend)
    reminder = SessionReminderInput(
        request_id=request_id,
        session_id=session_id,
        session_start=future(hour=10),
        offset_seconds=3600,
    )
    obsolete = SessionReminderInput(
        request_id=request_id,
        session_id=session_id,
        session_start=future(hour=8),
        offset_seconds=3600,
    )

    await backend.sessions.send_reminder(reminder)
    await backend.sessions.send_reminder(reminder)
    await backend.sessions.send_reminder(obsolete)

    reminders = [e for e in await backend.events(request_id) if e.event_type == "session.reminder"]
    assert [e.payload["seconds_before"] for e in reminders] == [3600]


async def _bookable(
    backend: Backend, consultant: uuid.UUID, minutes: int
) -> list[tuple[datetime, datetime]]:
    """What the availability search offers for a session of ``minutes`` (starts and ends)."""
    criteria = SearchCriteria(
        window_start=future(hour=0),
        window_end=future(hour=23),
        duration=timedelta(minutes=minutes),
        consultant_id=consultant,
        limit=50,
    )
    async with backend.session_factory() as session:
        times = await search_bookable_times(session, criteria)
    return [(t.start_time, t.end_time) for t in times]


async def test_freed_time_is_bookable_as_before_the_booking(backend: Backend) -> None:
    """Book 08:00 in an 08:00-11:00 block, move it to the next free time, cancel it:
    the search offers every start it offered before, for every duration."""
    service_type_id = await backend.service_type(minutes=30)
    consultant = await backend.consultant()
    block = await backend.slot(consultant, future(hour=8), hours=3)
    durations = (30, 60, 90, 120, 180)
    before = {minutes: await _bookable(backend, consultant, minutes) for minutes in durations}
    assert before[180] == [(future(hour=8), future(hour=11))]

    request_id = await backend.request(
        service_type_id, window_start=future(hour=0), window_end=future(9)
    )
    reserved = await backend.book(request_id, block, consultant, future(hour=8), minutes=30)
    [rest] = [s for s in await backend.slots_of(consultant) if s.status == "available"]
    next_start = future(hour=8) + timedelta(minutes=30)
    held = await backend.hold(
        request_id, rest.id, consultant, not_before=next_start, attempt=None, minutes=30
    )
    assert held.held
    await backend.sessions.reschedule_session(
        RescheduleSessionInput(
            request_id=request_id,
            session_id=reserved.session_id,
            from_slot_id=block,
            to_slot_id=rest.id,
            start=next_start,
            end=next_start + timedelta(minutes=30),
            party=Party.REQUESTER,
        )
    )
    assert await _bookable(backend, consultant, 60) != before[60]  # 08:30-09:00 is taken
    await backend.sessions.cancel_session(
        CancelSessionInput(
            request_id=request_id,
            session_id=reserved.session_id,
            party=Party.REQUESTER,
            actor_id=uuid.uuid4(),
            reason=None,
            session_status=SessionStatus.CANCELLED_BY_USER,
            status_reason=StatusReason.CANCELLED_BY_REQUESTER,
        )
    )

    after = {minutes: await _bookable(backend, consultant, minutes) for minutes in durations}
    assert after == before
    assert (await backend.session_row(reserved.session_id)).calendar_sequence == 2
    slots = [(s.start_time, s.end_time, s.status) for s in await backend.slots_of(consultant)]
    assert slots == [(future(hour=8), future(hour=11), "available")]


async def test_a_piece_an_open_request_asked_for_is_not_merged_away(backend: Backend) -> None:
    """A request submitted for a free piece by its id keeps that piece."""
    request_id, session_id, consultant, slot = await booked(backend)
    later_piece = next(
        s for s in await backend.slots_of(consultant) if s.start_time == future(hour=11)
    )
    service_type_id = await backend.service_type()
    waiting = await backend.request(
        service_type_id,
        window_start=future(hour=0),
        window_end=future(9),
        requested_slot_id=later_piece.id,
    )
    assert (await backend.request_row(waiting)).status == "pending_assignment"

    await backend.sessions.cancel_session(
        CancelSessionInput(
            request_id=request_id,
            session_id=session_id,
            party=Party.OPERATOR,
            actor_id=uuid.uuid4(),
            reason=None,
            session_status=SessionStatus.CANCELLED,
            status_reason=StatusReason.CANCELLED_BY_OPERATOR,
        )
    )

    slots = [(s.id, s.start_time, s.end_time) for s in await backend.slots_of(consultant)]
    assert slots == [
        (slot, future(hour=9), future(hour=11)),
        (later_piece.id, future(hour=11), future(hour=12)),
    ]
