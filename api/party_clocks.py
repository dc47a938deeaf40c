"""The clocks of both parties for request and session responses, read in batches:
one page of a list costs a few more queries, not a few per item.

The learner's zone is the request's (``None`` for requests stored before requests had
one: ``BOOKING_DEFAULT_LEARNER_TIME_ZONE``); the consultant's is their profile's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.local_times import RequestClock, SessionZones
from db.models import ConsultationRequest, ScheduledSession
from db.party_zones import consultant_zones, session_times, slot_consultants, zones_of_sessions


async def session_zones(
    session: AsyncSession, rows: Sequence[ScheduledSession], default_learner_zone: str
) -> dict[uuid.UUID, SessionZones]:
    """Per session id: the zones of its learner and its consultant."""
    found = await zones_of_sessions(session, {row.id for row in rows})
    return {
        session_id: SessionZones(zones.learner or default_learner_zone, zones.consultant)
        for session_id, zones in found.items()
    }


async def request_clocks(
    session: AsyncSession, rows: Sequence[ConsultationRequest], default_learner_zone: str
) -> dict[uuid.UUID, RequestClock]:
    """Per request id: its learner's zone, and its session's (else its chosen) start
    and end with the zone of the consultant it is with."""
    sessions = await session_times(
        session, {row.scheduled_session_id for row in rows if row.scheduled_session_id}
    )
    slots = await slot_consultants(
        session,
        {
            row.requested_slot_id
            for row in rows
            if row.requested_slot_id is not None and row.requested_start_time is not None
        },
    )
    timed: dict[uuid.UUID, tuple[datetime, datetime, uuid.UUID | None]] = {}
    for row in rows:
        booked = sessions.get(row.scheduled_session_id) if row.scheduled_session_id else None
        if booked is not None:
            timed[row.id] = (booked.start, booked.end, booked.consultant_id)
        elif row.requested_start_time is not None and row.preferred_end_time is not None:
            # A chosen start: the window is exactly the session. Its consultant is the
            # one asked, else the one it was chosen with (by id or by slot).
            chosen_with = (
                row.assigned_consultant_user_id
                or row.preferred_consultant_user_id
                or (slots.get(row.requested_slot_id) if row.requested_slot_id else None)
            )
            timed[row.id] = (row.requested_start_time, row.preferred_end_time, chosen_with)
    zones = await consultant_zones(
        session, {consultant for _, _, consultant in timed.values() if consultant is not None}
    )
    clocks: dict[uuid.UUID, RequestClock] = {}
    for row in rows:
        learner = row.learner_time_zone or default_learner_zone
        if row.id not in timed:
            clocks[row.id] = RequestClock(learner)
            continue
        start, end, consultant = timed[row.id]
        zone = zones.get(consultant) if consultant is not None else None
        clocks[row.id] = RequestClock(learner, start, end, zone)
    return clocks
