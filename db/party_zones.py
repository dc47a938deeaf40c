"""Whose clock a session's times are shown on: the learner's zone (on the request) and
the consultant's (on their profile), read in batches for lists and events.

A learner zone of ``None`` is a request stored before requests had one; the caller
reads it as ``BOOKING_DEFAULT_LEARNER_TIME_ZONE``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AvailabilitySlot, ConsultantProfile, ConsultationRequest, ScheduledSession


class PartyZones(NamedTuple):
    learner: str | None
    consultant: str


class SessionTimes(NamedTuple):
    start: datetime
    end: datetime
    consultant_id: uuid.UUID


async def zones_of_session(session: AsyncSession, session_id: uuid.UUID) -> PartyZones | None:
    """The zones of the session's learner and consultant (None: no such session)."""
    return (await zones_of_sessions(session, (session_id,))).get(session_id)


async def zones_of_sessions(
    session: AsyncSession, session_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, PartyZones]:
    if not session_ids:
        return {}
    rows = await session.execute(
        select(
            ScheduledSession.id,
            ConsultationRequest.learner_time_zone,
            ConsultantProfile.time_zone,
        )
        .join(
            ConsultationRequest,
            ConsultationRequest.id == ScheduledSession.consultation_request_id,
        )
        .join(
            ConsultantProfile,
            ConsultantProfile.consultant_user_id == ScheduledSession.consultant_user_id,
        )
        .where(ScheduledSession.id.in_(session_ids))
    )
    return {row.id: PartyZones(row.learner_time_zone, row.time_zone) for row in rows}


async def consultant_zones(
    session: AsyncSession, consultant_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not consultant_ids:
        return {}
    rows = await session.execute(
        select(ConsultantProfile.consultant_user_id, ConsultantProfile.time_zone).where(
            ConsultantProfile.consultant_user_id.in_(consultant_ids)
        )
    )
    return {row.consultant_user_id: row.time_zone for row in rows}


async def session_times(
    session: AsyncSession, session_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, SessionTimes]:
    if not session_ids:
        return {}
    table = ScheduledSession
    rows = await session.execute(
        select(
            table.id,
            table.scheduled_start_time,
            table.scheduled_end_time,
            table.consultant_user_id,
        ).where(table.id.in_(session_ids))
    )
    return {
        row.id: SessionTimes(
            row.scheduled_start_time, row.scheduled_end_time, row.consultant_user_id
        )
        for row in rows
    }


async def slot_consultants(
    session: AsyncSession, slot_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """Whose slots these are."""
    if not slot_ids:
        return {}
    rows = await session.execute(
        select(AvailabilitySlot.id, AvailabilitySlot.consultant_user_id).where(
            AvailabilitySlot.id.in_(slot_ids)
        )
    )
    return {row.id: row.consultant_user_id for row in rows}
