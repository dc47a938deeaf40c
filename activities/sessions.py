"""The ``session.*`` activities on the session row: book, move, cancel, remind,
start, complete, no-show (its meeting's activities are in ``activities.meetings``).

The request's final status follows its session: completed (also after a no-show,
whose reason names the missing party) or cancelled. Each activity is one
transaction with its outbox events and is idempotent.

The events that tell the parties when they meet (scheduled, rescheduled, reminder)
carry the start and end on each party's clock too, read in the same transaction
(the learner's zone from the request, the consultant's from their profile), so the
workflow need not know any zone.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities import SessionFactory, business_failure, transaction
from core.events import EventType
from core.local_time import UTC_ZONE, wall_clock
from core.vocabulary import (
    ErrorType,
    RequestStatus,
    SessionStatus,
    no_show_reason,
    no_show_status,
)
from db import sessions
from db.availability import holds
from db.outbox import PayloadValue, emit
from db.party_zones import session_times, zones_of_session
from db.sessions import attendance_values
from db.transitions import transition_request, transition_session
from workflows.contracts.activity_io import (
    CancelSessionInput,
    NoShowInput,
    RescheduleSessionInput,
    ReservedSession,
    ReserveInput,
    SessionReminderInput,
    SessionTransitionInput,
)
from workflows.contracts.names import ActivityName

BEFORE_END = (SessionStatus.SCHEDULED, SessionStatus.IN_PROGRESS)


class SessionActivities:
    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        default_learner_time_zone: str = UTC_ZONE,
        stale_calendars_block: bool = False,
    ) -> None:
        """``default_learner_time_zone``: the zone of learners whose request was stored
        before requests had one (``BOOKING_DEFAULT_LEARNER_TIME_ZONE``);
        ``stale_calendars_block``: ``BOOKING_CALENDAR_STALE_BLOCKS_BOOKING``."""
        self._sessions = session_factory
        self._default_learner_zone = default_learner_time_zone
        self._stale_calendars_block = stale_calendars_block

    async def _local_times(
        self, session: AsyncSession, session_id: uuid.UUID, start: datetime, end: datetime
    ) -> dict[str, PayloadValue]:
        """``learner_local`` and ``consultant_local`` of ``start``-``end``."""
        zones = await zones_of_session(session, session_id)
        if zones is None:  # the caller has just read or written the session
            raise RuntimeError(f"session {session_id} vanished in its own transaction")
        learner = zones.learner or self._default_learner_zone
        return {
            "learner_local": _on_clock(learner, start, end),
            "consultant_local": _on_clock(zones.consultant, start, end),
        }

    @activity.defn(name=ActivityName.RESERVE)
    async def reserve(self, arg: ReserveInput) -> ReservedSession:
        """Hold becomes booking: carve the slot, create the session, schedule the request."""
        async with transaction(self._sessions) as session:
            existing = await sessions.session_of_request(session, arg.request_id)
            if existing is not None and existing.slot_id is not None:
                return ReservedSession(
                    session_id=existing.session_id,
                    slot_id=existing.slot_id,
                    start=existing.start,
                    end=existing.end,
                )
            booked = await holds.book(
                session,
                slot_id=arg.slot_id,
                request_id=arg.request_id,
                start=arg.start,
                end=arg.end,
                stale_calendars_block=self._stale_calendars_block,
            )
            _raise_unless_booked(booked, "the request no longer holds the slot")
            await sessions.insert_session(
                session,
                session_id=arg.session_id,
                request_id=arg.request_id,
                requester_id=arg.requester_id,
                consultant_id=arg.consultant_id,
                service_type_id=arg.service_type_id,
                slot_id=arg.slot_id,
                start=arg.start,
                end=arg.end,
            )
            await transition_request(
                session,
                arg.request_id,
                expected=(RequestStatus.PENDING_CONFIRMATION,),
                target=RequestStatus.SCHEDULED,
                scheduled_session_id=arg.session_id,
                confirmation_deadline=None,
            )
            await emit(
                session,
                EventType.SESSION_SCHEDULED,
                subject=arg.session_id,
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={
                    "requester_id": arg.requester_id,
                    "consultant_id": arg.consultant_id,
                    "service_type_id": arg.service_type_id,
                    "start": arg.start,
                    "end": arg.end,
                    **await self._local_times(session, arg.session_id, arg.start, arg.end),
                },
            )
            return ReservedSession(
                session_id=arg.session_id, slot_id=arg.slot_id, start=arg.start, end=arg.end
            )

    @activity.defn(name=ActivityName.RESCHEDULE_SESSION)
    async def reschedule_session(self, arg: RescheduleSessionInput) -> None:
        """The new slot (already held) is booked and carved, the old one freed and
        the session moved (its calendar SEQUENCE one up), in one transaction."""
        async with transaction(self._sessions) as session:
            place = await sessions.lock_session(session, arg.session_id)
            if place.slot_id == arg.to_slot_id:
                return  # a retry after the commit
            if place.status is not SessionStatus.SCHEDULED:
                raise business_failure(
                    ErrorType.INVALID_STATE, f"the session is {place.status.value}"
                )
            booked = await holds.book(
                session,
                slot_id=arg.to_slot_id,
                request_id=arg.request_id,
                start=arg.start,
                end=arg.end,
                stale_calendars_block=self._stale_calendars_block,
            )
            _raise_unless_booked(booked, "the new slot is no longer held")
            if place.slot_id is not None:
                await holds.free(session, place.slot_id)
            await sessions.move_session(
                session, arg.session_id, slot_id=arg.to_slot_id, start=arg.start, end=arg.end
            )
            await emit(
                session,
                EventType.SESSION_RESCHEDULED,
                subject=arg.session_id,
                occurrence=(arg.to_slot_id,),
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={
                    "previous_start": place.start,
                    "previous_end": place.end,
                    "start": arg.start,
                    "end": arg.end,
                    "rescheduled_by": arg.party,
                    **await self._local_times(session, arg.session_id, arg.start, arg.end),
                },
            )

    @activity.defn(name=ActivityName.CANCEL_SESSION)
    async def cancel_session(self, arg: CancelSessionInput) -> None:
        """Session cancelled (its calendar SEQUENCE one up), its slot free again, the
        request cancelled."""
        async with transaction(self._sessions) as session:
            reason = (arg.reason or arg.status_reason).value
            await transition_session(
                session,
                arg.session_id,
                expected=(SessionStatus.SCHEDULED,),
                target=arg.session_status,
                cancellation_reason=reason,
                cancelled_by=arg.party.value,
                # Only when this attempt cancels it: a retry finds it cancelled already.
                calendar_sequence=sessions.next_calendar_sequence(),
            )
            slot_id = await sessions.slot_of_session(session, arg.session_id)
            if slot_id is not None:
                await holds.free(session, slot_id)
            await holds.release_all(session, arg.request_id)  # a reschedule's hold, if any
            await transition_request(
                session,
                arg.request_id,
                expected=(RequestStatus.SCHEDULED,),
                target=RequestStatus.CANCELLED,
                status_reason=arg.status_reason.value,
            )
            payload = {
                "cancelled_by": arg.party,
                "actor_id": arg.actor_id,
                "reason": arg.reason,
                "status_reason": arg.status_reason,
            }
            await emit(
                session,
                EventType.SESSION_CANCELLED,
                subject=arg.session_id,
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={**payload, "session_status": arg.session_status},
            )
            await emit(
                session,
                EventType.CONSULTATION_CANCELLED,
                subject=arg.request_id,
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload=payload,
            )

    @activity.defn(name=ActivityName.SEND_REMINDER)
    async def send_reminder(self, arg: SessionReminderInput) -> None:
        async with transaction(self._sessions) as session:
            if not await sessions.still_scheduled_at(session, arg.session_id, arg.session_start):
                return  # moved or cancelled meanwhile: this reminder is obsolete
            offset = round(arg.offset_seconds)
            end = (await session_times(session, (arg.session_id,)))[arg.session_id].end
            await emit(
                session,
                EventType.SESSION_REMINDER,
                subject=arg.session_id,
                occurrence=(arg.session_start.isoformat(), offset),
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={
                    "start": arg.session_start,
                    "end": end,
                    "seconds_before": offset,
                    **await self._local_times(session, arg.session_id, arg.session_start, end),
                },
            )

    @activity.defn(name=ActivityName.START_SESSION)
    async def start_session(self, arg: SessionTransitionInput) -> None:
        async with transaction(self._sessions) as session:
            await _record_moment(
                session, arg, (SessionStatus.SCHEDULED,), SessionStatus.IN_PROGRESS
            )

    @activity.defn(name=ActivityName.COMPLETE_SESSION)
    async def complete_session(self, arg: SessionTransitionInput) -> None:
        async with transaction(self._sessions) as session:
            await _record_moment(session, arg, BEFORE_END, SessionStatus.COMPLETED)
            await transition_request(
                session,
                arg.request_id,
                expected=(RequestStatus.SCHEDULED,),
                target=RequestStatus.COMPLETED,
            )

    @activity.defn(name=ActivityName.MARK_NO_SHOW)
    async def mark_no_show(self, arg: NoShowInput) -> None:
        async with transaction(self._sessions) as session:
            await _mark_no_show(session, arg)


def _on_clock(time_zone: str, start: datetime, end: datetime) -> dict[str, PayloadValue]:
    wall = wall_clock(time_zone, start, end)
    return {
        "time_zone": wall.time_zone,
        "start": wall.start,
        "end": wall.end,
        "utc_offset": wall.utc_offset,
    }


_MOMENT_EVENTS = {
    SessionStatus.IN_PROGRESS: EventType.SESSION_STARTED,
    SessionStatus.COMPLETED: EventType.SESSION_COMPLETED,
}


def _raise_unless_booked(booked: holds.Booking, not_held: str) -> None:
    """The business failure of a booking that did not happen (the workflow moves on)."""
    if booked is holds.Booking.NOT_HELD:
        raise business_failure(ErrorType.HOLD_LOST, not_held)
    if booked is holds.Booking.CONSULTANT_BUSY:
        raise business_failure(
            ErrorType.CONSULTANT_BUSY,
            "the consultant's calendar shows them busy then (an event added since the hold)",
        )


async def _record_moment(
    session: AsyncSession,
    arg: SessionTransitionInput,
    expected: tuple[SessionStatus, ...],
    target: SessionStatus,
) -> None:
    """The session started or ended (``arg.at``), with what the platform reported."""
    await transition_session(
        session,
        arg.session_id,
        expected=expected,
        target=target,
        **attendance_values(arg.attendance),
    )
    await emit(
        session,
        _MOMENT_EVENTS[target],
        subject=arg.session_id,
        request_id=arg.request_id,
        session_id=arg.session_id,
        payload={"at": arg.at},
    )


async def _mark_no_show(session: AsyncSession, arg: NoShowInput) -> None:
    """Automatic (at start + grace) or reported (also after a completed session)."""
    await transition_session(
        session,
        arg.session_id,
        expected=(*BEFORE_END, SessionStatus.COMPLETED),
        target=no_show_status(arg.absent),
        **attendance_values(arg.attendance),
    )
    await transition_request(
        session,
        arg.request_id,
        expected=(RequestStatus.SCHEDULED, RequestStatus.COMPLETED),
        target=RequestStatus.COMPLETED,
        status_reason=no_show_reason(arg.absent).value,
    )
    await emit(
        session,
        EventType.SESSION_NO_SHOW,
        subject=arg.session_id,
        request_id=arg.request_id,
        session_id=arg.session_id,
        payload={"absent": arg.absent, "reported_by": arg.reported_by, "actor_id": arg.actor_id},
    )
