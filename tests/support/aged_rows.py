"""Rows of every kind the retention sweep handles, written directly with the age a test
needs (timestamps set on insert; the ``updated_at`` trigger only fires on updates)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.vocabulary import DeliveryStatus, RequestStatus, SessionStatus
from db.models import (
    AvailabilitySlot,
    ConsultantProfile,
    ConsultationRequest,
    DomainEvent,
    InboundWebhookEvent,
    ScheduledSession,
    ServiceType,
    WebhookDelivery,
    WebhookFanoutCursor,
    WebhookSubscription,
)
from integrations.webhooks.signing import generate_secret

SessionFactory = async_sessionmaker[AsyncSession]


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


@dataclass
class AgedRows:
    sessions: SessionFactory
    service_type_id: uuid.UUID | None = None
    consultant_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None

    async def _catalogue(self, session: AsyncSession) -> tuple[uuid.UUID, uuid.UUID]:
        if self.service_type_id is None or self.consultant_id is None:
            self.service_type_id = await session.scalar(
                insert(ServiceType)
                .values(name=f"aged-{uuid.uuid4()}", default_duration_minutes=60)
                .returning(ServiceType.id)
            )
            self.consultant_id = uuid.uuid4()
            await session.execute(
                insert(ConsultantProfile).values(consultant_user_id=self.consultant_id)
            )
        assert self.service_type_id is not None
        return self.service_type_id, self.consultant_id

    async def requests(
        self,
        count: int,
        *,
        status: RequestStatus,
        updated: datetime,
        details: str | None = "Please help me prepare",
        requester_id: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        request_ids = [uuid.uuid4() for _ in range(count)]
        async with self.sessions() as session, session.begin():
            service_type_id, _ = await self._catalogue(session)
            rows = [
                {
                    "id": request_id,
                    "requester_user_id": requester_id or uuid.uuid4(),
                    "consultation_service_type_id": service_type_id,
                    "status": status.value,
                    "request_details": details,
                    "requested_at": updated - timedelta(days=1),
                    "updated_at": updated,
                }
                for request_id in request_ids
            ]
            await session.execute(insert(ConsultationRequest), rows)
        return request_ids

    async def session_for(
        self,
        request_id: uuid.UUID,
        *,
        status: SessionStatus,
        updated: datetime,
        start: datetime | None = None,
        join_url: str | None = "https://meet.example.test/room",
    ) -> uuid.UUID:
        async with self.sessions() as session, session.begin():
            service_type_id, consultant_id = await self._catalogue(session)
            requester = await session.scalar(
                select(ConsultationRequest.requester_user_id).where(
                    ConsultationRequest.id == request_id
                )
            )
            start = start or updated - timedelta(hours=2)
            session_id = await session.scalar(
                insert(ScheduledSession)
                .values(
                    consultation_request_id=request_id,
                    requester_user_id=requester,
                    consultant_user_id=consultant_id,
                    consultation_service_type_id=service_type_id,
                    scheduled_start_time=start,
                    scheduled_end_time=start + timedelta(hours=1),
                    status=status.value,
                    meeting_platform_session_id=f"room-{uuid.uuid4().hex[:8]}",
                    meeting_platform_join_url=join_url,
                    updated_at=updated,
                )
                .returning(ScheduledSession.id)
            )
        assert isinstance(session_id, uuid.UUID)
        return session_id

    async def slot(self, start: datetime, hours: float = 1) -> uuid.UUID:
        async with self.sessions() as session, session.begin():
            _, consultant_id = await self._catalogue(session)
            slot_id = await session.scalar(
                insert(AvailabilitySlot)
                .values(
                    consultant_user_id=consultant_id,
                    start_time=start,
                    end_time=start + timedelta(hours=hours),
                )
                .returning(AvailabilitySlot.id)
            )
        assert isinstance(slot_id, uuid.UUID)
        return slot_id

    async def events(
        self, count: int, *, occurred: datetime, request_id: uuid.UUID | None = None
    ) -> list[uuid.UUID]:
        return await self.events_of(
            [request_id or uuid.uuid4() for _ in range(count)], occurred=occurred
        )

    async def events_of(
        self, request_ids: list[uuid.UUID], *, occurred: datetime
    ) -> list[uuid.UUID]:
        """One event of each request, in one transaction."""
        async with self.sessions() as session, session.begin():
            rows = [
                {
                    "event_type": "consultation.requested",
                    "dedupe_key": f"aged:{uuid.uuid4()}",
                    "occurred_at": occurred,
                    "consultation_request_id": request_id,
                    "payload": {"requester_id": str(uuid.uuid4())},
                }
                for request_id in request_ids
            ]
            result = await session.execute(insert(DomainEvent).returning(DomainEvent.id), rows)
            return list(result.scalars().all())

    async def fanned_out_up_to_now(self) -> None:
        """Move the fan-out cursor past every event written so far."""
        async with self.sessions() as session, session.begin():
            last = (
                await session.execute(
                    select(DomainEvent.transaction_id, DomainEvent.sequence)
                    .order_by(DomainEvent.transaction_id.desc(), DomainEvent.sequence.desc())
                    .limit(1)
                )
            ).one()
            cursor = await session.get(WebhookFanoutCursor, 1)
            if cursor is None:
                session.add(
                    WebhookFanoutCursor(
                        id=1, last_transaction_id=last.transaction_id, last_sequence=last.sequence
                    )
                )
            else:
                cursor.last_transaction_id = last.transaction_id
                cursor.last_sequence = last.sequence

    async def deliveries(
        self, event_ids: list[uuid.UUID], *, status: DeliveryStatus, updated: datetime
    ) -> list[uuid.UUID]:
        async with self.sessions() as session, session.begin():
            if self.subscription_id is None:
                self.subscription_id = await session.scalar(
                    insert(WebhookSubscription)
                    .values(url="https://hooks.example.test/aged", secret=generate_secret())
                    .returning(WebhookSubscription.id)
                )
            events = (
                await session.execute(
                    select(DomainEvent.id, DomainEvent.sequence).where(
                        DomainEvent.id.in_(event_ids)
                    )
                )
            ).all()
            rows = [
                {
                    "subscription_id": self.subscription_id,
                    "event_id": event.id,
                    "event_sequence": event.sequence,
                    "status": status.value,
                    "locked_until": updated + timedelta(minutes=1)
                    if status is DeliveryStatus.DELIVERING
                    else None,
                    "updated_at": updated,
                }
                for event in events
            ]
            result = await session.execute(
                insert(WebhookDelivery).returning(WebhookDelivery.id), rows
            )
            return list(result.scalars().all())

    async def inbound_events(self, count: int, *, received: datetime) -> list[uuid.UUID]:
        async with self.sessions() as session, session.begin():
            rows = [
                {
                    "source": "meeting_platform",
                    "external_id": f"evt_{uuid.uuid4().hex}",
                    "event_type": "meeting.started",
                    "state": "delivered",
                    "received_at": received,
                }
                for _ in range(count)
            ]
            result = await session.execute(
                insert(InboundWebhookEvent).returning(InboundWebhookEvent.id), rows
            )
            return list(result.scalars().all())
