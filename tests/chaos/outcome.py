"""What a chaos run left behind, read straight from PostgreSQL, and what it should be."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.events import EventType
from db.models import ConsultationRequest, DomainEvent, ScheduledSession

ASKED = [
    EventType.CONSULTATION_REQUESTED,
    EventType.CONSULTATION_ASSIGNED,
    EventType.CONSULTATION_CONFIRMATION_REQUESTED,
]
BOOKED = [*ASKED, EventType.SESSION_SCHEDULED, EventType.SESSION_MEETING_READY]
# When the platform failed the first create, the late link is announced once before it comes.
BOOKED_LATE = [
    *ASKED,
    EventType.SESSION_SCHEDULED,
    EventType.SESSION_MEETING_PENDING,
    EventType.SESSION_MEETING_READY,
]
CANCELLED = [*ASKED, EventType.CONSULTATION_CANCELLED]


@dataclass(frozen=True)
class SessionRow:
    id: uuid.UUID
    request_id: uuid.UUID
    consultant_id: uuid.UUID
    slot_id: uuid.UUID | None
    status: str
    meeting_id: str | None
    join_url: str | None


@dataclass(frozen=True)
class Outcome:
    request_status: dict[str, str]
    sessions: dict[str, list[SessionRow]]
    """Per request id, every session row it has (whatever its status)."""
    events: dict[str, list[DomainEvent]]
    """Per request id, its outbox rows in feed order."""

    def settled(self, cancelled: set[str], booked: set[str]) -> bool:
        """Every request reached its end: cancelled, or scheduled with a join URL."""
        return all(self.request_status.get(r) == "cancelled" for r in cancelled) and all(
            self.request_status.get(r) == "scheduled"
            and any(s.join_url for s in self.sessions.get(r, []))
            for r in booked
        )

    def event_types(self, request_id: str) -> list[str]:
        return [event.event_type for event in self.events.get(request_id, [])]


async def read_outcome(
    sessions: async_sessionmaker[AsyncSession], request_ids: set[str]
) -> Outcome:
    ids = [uuid.UUID(r) for r in request_ids]
    async with sessions() as session:
        statuses = await session.execute(
            select(ConsultationRequest.id, ConsultationRequest.status).where(
                ConsultationRequest.id.in_(ids)
            )
        )
        session_rows = await session.scalars(
            select(ScheduledSession).where(ScheduledSession.consultation_request_id.in_(ids))
        )
        events = await session.scalars(
            select(DomainEvent)
            .where(DomainEvent.consultation_request_id.in_(ids))
            .order_by(DomainEvent.transaction_id, DomainEvent.sequence)
        )
        by_request: dict[str, list[SessionRow]] = defaultdict(list)
        for row in session_rows:
            by_request[str(row.consultation_request_id)].append(
                SessionRow(
                    row.id,
                    row.consultation_request_id,
                    row.consultant_user_id,
                    row.availability_slot_id,
                    row.status,
                    row.meeting_platform_session_id,
                    row.meeting_platform_join_url,
                )
            )
        events_by_request: dict[str, list[DomainEvent]] = defaultdict(list)
        for event in events:
            events_by_request[str(event.consultation_request_id)].append(event)
        return Outcome(
            {str(request_id): status for request_id, status in statuses},
            dict(by_request),
            dict(events_by_request),
        )
