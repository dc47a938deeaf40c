"""Statements on scheduled session rows beyond their status transitions.

Only the session's request workflow writes these rows (through its activities):
creating the session at the booking, moving it, the attendance the meeting
platform reported, and its meeting room.

A session's ``calendar_sequence`` is the iCalendar SEQUENCE of its event: every move
and the cancel raise it by one in the statement that makes the change, so a calendar
app that already holds the event replaces it (a retried activity finds the change
made and raises nothing).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import SessionStatus
from db.models import ScheduledSession

Session = ScheduledSession


class SessionPlace(NamedTuple):
    """Where and when a session takes place, and its status."""

    session_id: uuid.UUID
    slot_id: uuid.UUID | None
    start: datetime
    end: datetime
    status: SessionStatus


class MeetingRoomRow(NamedTuple):
    platform_session_id: str | None
    join_url: str | None


class Attendance(Protocol):
    """What the meeting platform reported (the workflow's attendance record)."""

    @property
    def meeting_started_at(self) -> datetime | None: ...
    @property
    def meeting_ended_at(self) -> datetime | None: ...
    @property
    def learner_joined_at(self) -> datetime | None: ...
    @property
    def consultant_joined_at(self) -> datetime | None: ...


def _place(row: Any) -> SessionPlace:
    return SessionPlace(
        session_id=row.id,
        slot_id=row.availability_slot_id,
        start=row.scheduled_start_time,
        end=row.scheduled_end_time,
        status=SessionStatus(row.status),
    )


_PLACE_COLUMNS = (
    Session.id,
    Session.availability_slot_id,
    Session.scheduled_start_time,
    Session.scheduled_end_time,
    Session.status,
)


async def session_of_request(session: AsyncSession, request_id: uuid.UUID) -> SessionPlace | None:
    row = (
        await session.execute(
            select(*_PLACE_COLUMNS).where(Session.consultation_request_id == request_id)
        )
    ).one_or_none()
    return None if row is None else _place(row)


async def lock_session(session: AsyncSession, session_id: uuid.UUID) -> SessionPlace:
    """The session's place, its row locked until the transaction ends."""
    row = (
        await session.execute(
            select(*_PLACE_COLUMNS).where(Session.id == session_id).with_for_update()
        )
    ).one()
    return _place(row)


async def insert_session(
    session: AsyncSession,
    *,
    session_id: uuid.UUID,
    request_id: uuid.UUID,
    requester_id: uuid.UUID,
    consultant_id: uuid.UUID,
    service_type_id: uuid.UUID,
    slot_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> None:
    await session.execute(
        insert(Session).values(
            id=session_id,
            consultation_request_id=request_id,
            requester_user_id=requester_id,
            consultant_user_id=consultant_id,
            consultation_service_type_id=service_type_id,
            availability_slot_id=slot_id,
            scheduled_start_time=start,
            scheduled_end_time=end,
            status=SessionStatus.SCHEDULED.value,
        )
    )


def next_calendar_sequence() -> ColumnElement[int]:
    """The session's SEQUENCE one up, for the ``UPDATE`` that moves or cancels it."""
    return Session.calendar_sequence + 1


async def move_session(
    session: AsyncSession,
    session_id: uuid.UUID,
    *,
    slot_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> None:
    await session.execute(
        update(Session)
        .where(Session.id == session_id)
        .values(
            availability_slot_id=slot_id,
            scheduled_start_time=start,
            scheduled_end_time=end,
            calendar_sequence=next_calendar_sequence(),
        )
    )


async def slot_of_session(session: AsyncSession, session_id: uuid.UUID) -> uuid.UUID | None:
    slot_id: uuid.UUID | None = await session.scalar(
        select(Session.availability_slot_id).where(Session.id == session_id)
    )
    return slot_id


async def still_scheduled_at(session: AsyncSession, session_id: uuid.UUID, start: datetime) -> bool:
    """Whether the session is still ahead and still starts at ``start`` (not moved)."""
    found = await session.scalar(
        select(Session.id).where(
            Session.id == session_id,
            Session.status == SessionStatus.SCHEDULED.value,
            Session.scheduled_start_time == start,
        )
    )
    return found is not None


def attendance_values(attendance: Attendance) -> dict[str, Any]:
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


async def meeting_room(session: AsyncSession, session_id: uuid.UUID) -> MeetingRoomRow | None:
    row = (
        await session.execute(
            select(Session.meeting_platform_session_id, Session.meeting_platform_join_url).where(
                Session.id == session_id
            )
        )
    ).one_or_none()
    return None if row is None else MeetingRoomRow(*row)


LIVE_STATUSES = (SessionStatus.SCHEDULED.value, SessionStatus.IN_PROGRESS.value)


async def is_live(session: AsyncSession, session_id: uuid.UUID) -> bool:
    """Whether the session is still ahead or under way (not cancelled, not over)."""
    found = await session.scalar(
        select(Session.id).where(Session.id == session_id, Session.status.in_(LIVE_STATUSES))
    )
    return found is not None


async def awaits_meeting(session: AsyncSession, session_id: uuid.UUID, start: datetime) -> bool:
    """Whether the session, still scheduled at ``start``, has no meeting room yet."""
    found = await session.scalar(
        select(Session.id).where(
            Session.id == session_id,
            Session.status == SessionStatus.SCHEDULED.value,
            Session.scheduled_start_time == start,
            Session.meeting_platform_join_url.is_(None),
        )
    )
    return found is not None


async def store_first_meeting_room(
    session: AsyncSession, session_id: uuid.UUID, *, platform_session_id: str, join_url: str
) -> bool:
    """Store the session's room unless it has one already or is no longer live (a
    cancelled session keeps no room); True if this call stored it."""
    stored = (
        await session.execute(
            update(Session)
            .where(
                Session.id == session_id,
                Session.meeting_platform_join_url.is_(None),
                Session.status.in_(LIVE_STATUSES),
            )
            .values(
                meeting_platform_session_id=platform_session_id, meeting_platform_join_url=join_url
            )
            .returning(Session.id)
        )
    ).first()
    return stored is not None


async def replace_meeting_room(
    session: AsyncSession, session_id: uuid.UUID, *, platform_session_id: str, join_url: str
) -> None:
    await session.execute(
        update(Session)
        .where(Session.id == session_id)
        .values(meeting_platform_session_id=platform_session_id, meeting_platform_join_url=join_url)
    )
