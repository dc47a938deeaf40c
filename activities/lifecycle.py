"""Session transitions after the booking: move, cancel, remind, start, complete, no-show.

The request's final status follows its session: completed (also after a no-show,
whose reason names the missing party) or cancelled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities import slots
from activities.database import SessionFactory, business_failure, transaction
from activities.events import emit
from activities.rows import transition_request, transition_session
from core.events import EventType
from core.vocabulary import ErrorType, RequestStatus, SessionStatus, no_show_reason, no_show_status
from db.models import ScheduledSession
from workflows.contracts.activity_io import (
    Attendance,
    CancelSessionInput,
    NoShowInput,
    RescheduleSessionInput,
    SessionReminderInput,
    SessionTransitionInput,
)
from workflows.contracts.names import ActivityName

Session = ScheduledSession
BEFORE_END = (SessionStatus.SCHEDULED, SessionStatus.IN_PROGRESS)


class LifecycleActivities:
    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    @activity.defn(name=ActivityName.RESCHEDULE_SESSION)
    async def reschedule_session(self, arg: RescheduleSessionInput) -> None:
        """The new slot (already held) is booked and carved, the old one freed and
        the session moved, in one transaction."""
        async with transaction(self._sessions) as session:
            row = (
                await session.execute(
                    select(
                        Session.status,
                        Session.availability_slot_id,
                        Session.scheduled_start_time,
                        Session.scheduled_end_time,
                    )
                    .where(Session.id == arg.session_id)
                    .with_for_update()
                )
            ).one()
            if row.availability_slot_id == arg.to_slot_id:
                return  # a retry after the commit
            if row.status != SessionStatus.SCHEDULED.value:
                raise business_failure(ErrorType.INVALID_STATE, f"the session is {row.status}")
            booked = await slots.book(
                session,
                slot_id=arg.to_slot_id,
                request_id=arg.request_id,
                start=arg.start,
                end=arg.end,
            )
            if not booked:
                raise business_failure(ErrorType.HOLD_LOST, "the new slot is no longer held")
            if row.availability_slot_id is not None:
                await slots.free(session, row.availability_slot_id)
            await session.execute(
                update(Session)
                .where(Session.id == arg.session_id)
                .values(
                    availability_slot_id=arg.to_slot_id,
                    scheduled_start_time=arg.start,
                    scheduled_end_time=arg.end,
                )
            )
            await emit(
                session,
                EventType.SESSION_RESCHEDULED,
                subject=arg.session_id,
                occurrence=(arg.to_slot_id,),
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={
                    "previous_start": row.scheduled_start_time,
                    "previous_end": row.scheduled_end_time,
                    "start": arg.start,
                    "end": arg.end,
                    "rescheduled_by": arg.party,
                },
            )

    @activity.defn(name=ActivityName.CANCEL_SESSION)
    async def cancel_session(self, arg: CancelSessionInput) -> None:
        """Session cancelled, its slot free again, the request cancelled."""
        async with transaction(self._sessions) as session:
            reason = (arg.reason or arg.status_reason).value
            await transition_session(
                session,
                arg.session_id,
                expected=(SessionStatus.SCHEDULED,),
                target=arg.session_status,
                cancellation_reason=reason,
                cancelled_by=arg.party.value,
            )
            slot_id = await session.scalar(
                select(Session.availability_slot_id).where(Session.id == arg.session_id)
            )
            if slot_id is not None:
                await slots.free(session, slot_id)
            await slots.release_all(session, arg.request_id)  # a reschedule's hold, if any
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
            still_ahead = await session.scalar(
                select(Session.id).where(
                    Session.id == arg.session_id,
                    Session.status == SessionStatus.SCHEDULED.value,
                    Session.scheduled_start_time == arg.session_start,
                )
            )
            if still_ahead is None:
                return  # moved or cancelled meanwhile: this reminder is obsolete
            offset = round(arg.offset_seconds)
            await emit(
                session,
                EventType.SESSION_REMINDER,
                subject=arg.session_id,
                occurrence=(
                    arg.session_start.isoformat(),
                    offset,
                ),
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={"start": arg.session_start, "seconds_before": offset},
            )

    @activity.defn(name=ActivityName.START_SESSION)
    async def start_session(self, arg: SessionTransitionInput) -> None:
        async with transaction(self._sessions) as session:
            await transition_session(
                session,
                arg.session_id,
                expected=(SessionStatus.SCHEDULED,),
                target=SessionStatus.IN_PROGRESS,
                **_attendance_values(arg.attendance),
            )
            await emit(
                session,
                EventType.SESSION_STARTED,
                subject=arg.session_id,
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={"at": arg.at},
            )

    @activity.defn(name=ActivityName.COMPLETE_SESSION)
    async def complete_session(self, arg: SessionTransitionInput) -> None:
        async with transaction(self._sessions) as session:
            await transition_session(
                session,
                arg.session_id,
                expected=BEFORE_END,
                target=SessionStatus.COMPLETED,
                **_attendance_values(arg.attendance),
            )
            await transition_request(
                session,
                arg.request_id,
                expected=(RequestStatus.SCHEDULED,),
                target=RequestStatus.COMPLETED,
            )
            await emit(
                session,
                EventType.SESSION_COMPLETED,
                subject=arg.session_id,
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={"at": arg.at},
            )

    @activity.defn(name=ActivityName.MARK_NO_SHOW)
    async def mark_no_show(self, arg: NoShowInput) -> None:
        async with transaction(self._sessions) as session:
            await _mark_no_show(session, arg)


async def _mark_no_show(session: AsyncSession, arg: NoShowInput) -> None:
    """Automatic (at start + grace) or reported (also after a completed session)."""
    await transition_session(
        session,
        arg.session_id,
        expected=(*BEFORE_END, SessionStatus.COMPLETED),
        target=no_show_status(arg.absent),
        **_attendance_values(arg.attendance),
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


def _attendance_values(attendance: Attendance) -> dict[str, Any]:
    """What the platform reported, without overwriting what an earlier step stored."""
    columns: dict[str, tuple[Any, datetime | None]] = {
        "actual_start_time": (Session.actual_start_time, attendance.meeting_started_at),
        "actual_end_time": (Session.actual_end_time, attendance.meeting_ended_at),
        "learner_joined_at": (Session.learner_joined_at, attendance.learner_joined_at),
        "consultant_joined_at": (Session.consultant_joined_at, attendance.consultant_joined_at),
    }
    return {
        name: func.coalesce(column, value)
        for name, (column, value) in columns.items()
        if value is not None
    }
