"""Sessions as a calendar shows them: one row per session with what its event needs
(times, status, SEQUENCE, the service type's name, the consultant's display name, the
join link), for one session or for one person's feed.

A feed is read through the index on (consultant, start) or (learner, start), bounded
by a window of starts and a count, so a calendar app polling it costs one short
index walk.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import ParticipantRole, SessionStatus
from db.models import ConsultantProfile, ScheduledSession, ServiceType


class CalendarEntry(NamedTuple):
    session_id: uuid.UUID
    status: SessionStatus
    start: datetime
    end: datetime
    sequence: int
    created_at: datetime
    updated_at: datetime
    join_url: str | None
    service_name: str
    requester_id: uuid.UUID
    consultant_id: uuid.UUID
    consultant_name: str | None


def _entries() -> Select[*tuple[Any, ...]]:
    table = ScheduledSession
    return (
        select(
            table.id,
            table.status,
            table.scheduled_start_time,
            table.scheduled_end_time,
            table.calendar_sequence,
            table.created_at,
            table.updated_at,
            table.meeting_platform_join_url,
            ServiceType.name,
            table.requester_user_id,
            table.consultant_user_id,
            ConsultantProfile.display_name,
        )
        .join(ServiceType, ServiceType.id == table.consultation_service_type_id)
        .join(ConsultantProfile, ConsultantProfile.consultant_user_id == table.consultant_user_id)
    )


def _entry(row: Any) -> CalendarEntry:
    return CalendarEntry(
        session_id=row[0],
        status=SessionStatus(row[1]),
        start=row[2],
        end=row[3],
        sequence=row[4],
        created_at=row[5],
        updated_at=row[6],
        join_url=row[7],
        service_name=row[8],
        requester_id=row[9],
        consultant_id=row[10],
        consultant_name=row[11],
    )


async def entry_of(session: AsyncSession, session_id: uuid.UUID) -> CalendarEntry | None:
    row = (await session.execute(_entries().where(ScheduledSession.id == session_id))).one_or_none()
    return None if row is None else _entry(row)


def party_column(role: ParticipantRole) -> ColumnElement[uuid.UUID]:
    """The column naming the session's party in ``role``."""
    if role is ParticipantRole.LEARNER:
        return ScheduledSession.requester_user_id.expression
    return ScheduledSession.consultant_user_id.expression


async def entries_of(
    session: AsyncSession,
    role: ParticipantRole,
    person_id: uuid.UUID,
    *,
    starts_from: datetime,
    starts_before: datetime,
    limit: int,
) -> list[CalendarEntry]:
    """The sessions the person takes part in as ``role`` that start in the window,
    earliest first, at most ``limit`` (cancelled ones too: a calendar that holds one
    learns that it is off)."""
    table = ScheduledSession
    query = (
        _entries()
        .where(
            party_column(role) == person_id,
            table.scheduled_start_time >= starts_from,
            table.scheduled_start_time < starts_before,
        )
        .order_by(table.scheduled_start_time, table.id)
        .limit(limit)
    )
    return [_entry(row) for row in (await session.execute(query)).all()]
