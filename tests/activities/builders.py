"""Rows for the activity tests: catalog data written directly, requests through the
activities themselves (as the workflow would)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.requests import RequestActivities
from activities.sessions import SessionActivities
from core.vocabulary import Party, SessionStatus, StatusReason
from db.models import (
    AvailabilitySlot,
    BusyInterval,
    ConsultantCalendar,
    ConsultantProfile,
    ConsultationRequest,
    DomainEvent,
    ScheduledSession,
    ServiceType,
)
from workflows.contracts.activity_io import (
    AssignmentStep,
    CancelSessionInput,
    HoldResult,
    HoldSlotInput,
    PersistRequestInput,
    RescheduleSessionInput,
    ReservedSession,
    ReserveInput,
)

SessionFactory = async_sessionmaker[AsyncSession]


def future(days: float = 3, hour: int = 9) -> datetime:
    """A whole hour some days ahead (UTC), far from any notice period."""
    day = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return day + timedelta(days=days)


class Backend:
    """The activities under test on one session factory, plus row helpers."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.session_factory = sessions
        self.requests = RequestActivities(sessions)
        self.sessions = SessionActivities(sessions)

    async def service_type(
        self,
        *,
        specialization: str | None = None,
        active: bool = True,
        minutes: int = 60,
        step: int | None = None,
        name: str | None = None,
        **policy: int | None,
    ) -> uuid.UUID:
        """``policy``: the type's scheduling-policy columns (``buffer_after_minutes``, …)."""
        return await self._insert(
            ServiceType,
            ServiceType.id,
            name=name or f"type-{uuid.uuid4()}",
            default_duration_minutes=minutes,
            required_specialization=specialization,
            is_active=active,
            start_interval_minutes=step,
            **policy,
        )

    async def consultant(
        self,
        *,
        specializations: tuple[str, ...] = (),
        available: bool = True,
        last_assigned_at: datetime | None = None,
        time_zone: str = "UTC",
        display_name: str | None = None,
        **policy: int | None,
    ) -> uuid.UUID:
        """``policy``: the profile's buffers and caps (``max_sessions_per_day``, …)."""
        return await self._insert(
            ConsultantProfile,
            ConsultantProfile.consultant_user_id,
            consultant_user_id=uuid.uuid4(),
            display_name=display_name,
            specializations=list(specializations),
            is_available_for_booking=available,
            last_assigned_at=last_assigned_at,
            time_zone=time_zone,
            **policy,
        )

    async def slot(
        self, consultant_id: uuid.UUID, start: datetime, hours: float = 1, status: str = "available"
    ) -> uuid.UUID:
        return await self._insert(
            AvailabilitySlot,
            AvailabilitySlot.id,
            consultant_user_id=consultant_id,
            start_time=start,
            end_time=start + timedelta(hours=hours),
            status=status,
        )

    async def busy(
        self,
        consultant_id: uuid.UUID,
        start: datetime,
        end: datetime,
        *,
        stale: bool = False,
    ) -> uuid.UUID:
        """A linked calendar of the consultant holding one busy interval (as its sync
        stores them); ``stale``: its last fetch failed."""
        calendar_id = await self._insert(
            ConsultantCalendar,
            ConsultantCalendar.id,
            consultant_user_id=consultant_id,
            kind="ics",
            address_ciphertext=b"not read by these tests",
            address_hint="https://calendar.example/…",
            stale_since=datetime.now(UTC) if stale else None,
            last_error="HTTP 503 from the calendar server" if stale else None,
        )
        await self.add_busy(calendar_id, consultant_id, start, end)
        return calendar_id

    async def add_busy(
        self, calendar_id: uuid.UUID, consultant_id: uuid.UUID, start: datetime, end: datetime
    ) -> None:
        async with self.session_factory() as session, session.begin():
            await session.execute(
                insert(BusyInterval).values(
                    calendar_id=calendar_id,
                    consultant_user_id=consultant_id,
                    source_key=f"event-{uuid.uuid4()}",
                    start_time=start,
                    end_time=end,
                )
            )

    async def request(
        self, service_type_id: uuid.UUID, *, window_start: datetime, window_end: datetime, **kw: Any
    ) -> uuid.UUID:
        request_id = uuid.uuid4()
        values: dict[str, Any] = {
            "request_id": request_id,
            "requester_id": uuid.uuid4(),
            "service_type_id": service_type_id,
            "window_start": window_start,
            "window_end": window_end,
            "requested_slot_id": None,
            "preferred_consultant_id": None,
            "company_id": None,
            "idempotency_key": f"key-{request_id}",
            "details_staged": False,
        }
        values.update(kw)
        await self.requests.persist_request(PersistRequestInput(**values))
        return request_id

    async def hold(
        self,
        request_id: uuid.UUID,
        slot_id: uuid.UUID,
        consultant_id: uuid.UUID,
        *,
        not_before: datetime,
        attempt: int | None = 1,
        minutes: int = 60,
        start: datetime | None = None,
        step: int | None = None,
    ) -> HoldResult:
        deadline = datetime.now(UTC) + timedelta(hours=24)
        return await self.requests.hold_slot(
            HoldSlotInput(
                request_id=request_id,
                slot_id=slot_id,
                consultant_id=consultant_id,
                duration_minutes=minutes,
                not_before=not_before,
                window_end=None,
                hold_expires_at=deadline + timedelta(hours=1),
                assignment=(
                    AssignmentStep(attempt=attempt, confirmation_deadline=deadline)
                    if attempt is not None
                    else None
                ),
                start=start,
                start_interval_minutes=step,
            )
        )

    async def book(
        self,
        request_id: uuid.UUID,
        slot_id: uuid.UUID,
        consultant_id: uuid.UUID,
        start: datetime,
        *,
        minutes: int = 60,
    ) -> ReservedSession:
        """Hold and reserve: the request ends up ``scheduled``."""
        held = await self.hold(
            request_id, slot_id, consultant_id, not_before=start, minutes=minutes
        )
        assert held.held
        row = await self.request_row(request_id)
        return await self.sessions.reserve(
            ReserveInput(
                request_id=request_id,
                session_id=uuid.uuid4(),
                slot_id=slot_id,
                consultant_id=consultant_id,
                requester_id=row.requester_user_id,
                service_type_id=row.consultation_service_type_id,
                start=start,
                end=start + timedelta(minutes=minutes),
            )
        )

    async def move(self, session_id: uuid.UUID, start: datetime, *, minutes: int = 60) -> uuid.UUID:
        """Reschedule the session to a new slot of its consultant at ``start`` (held,
        then moved, as the workflow does); the new slot's id."""
        row = await self.session_row(session_id)
        assert row.availability_slot_id is not None
        slot_id = await self.slot(row.consultant_user_id, start, hours=minutes / 60)
        held = await self.hold(
            row.consultation_request_id,
            slot_id,
            row.consultant_user_id,
            not_before=start,
            attempt=None,
            minutes=minutes,
        )
        assert held.held
        await self.sessions.reschedule_session(
            RescheduleSessionInput(
                request_id=row.consultation_request_id,
                session_id=session_id,
                from_slot_id=row.availability_slot_id,
                to_slot_id=slot_id,
                start=start,
                end=start + timedelta(minutes=minutes),
                party=Party.REQUESTER,
            )
        )
        return slot_id

    async def cancel(self, session_id: uuid.UUID) -> None:
        """The learner cancels the session (as the workflow's activity does)."""
        row = await self.session_row(session_id)
        await self.sessions.cancel_session(
            CancelSessionInput(
                request_id=row.consultation_request_id,
                session_id=session_id,
                party=Party.REQUESTER,
                actor_id=row.requester_user_id,
                reason=None,
                session_status=SessionStatus.CANCELLED_BY_USER,
                status_reason=StatusReason.CANCELLED_BY_REQUESTER,
            )
        )

    async def request_row(self, request_id: uuid.UUID) -> ConsultationRequest:
        async with self.session_factory() as session:
            row = await session.get(ConsultationRequest, request_id)
        assert row is not None
        return row

    async def session_row(self, session_id: uuid.UUID) -> ScheduledSession:
        async with self.session_factory() as session:
            row = await session.get(ScheduledSession, session_id)
        assert row is not None
        return row

    async def slots_of(self, consultant_id: uuid.UUID) -> list[AvailabilitySlot]:
        async with self.session_factory() as session:
            rows = await session.scalars(
                select(AvailabilitySlot)
                .where(AvailabilitySlot.consultant_user_id == consultant_id)
                .order_by(AvailabilitySlot.start_time)
            )
            return list(rows)

    async def events(self, request_id: uuid.UUID) -> list[DomainEvent]:
        async with self.session_factory() as session:
            rows = await session.scalars(
                select(DomainEvent)
                .where(DomainEvent.consultation_request_id == request_id)
                .order_by(DomainEvent.sequence)
            )
            return list(rows)

    async def event_types(self, request_id: uuid.UUID) -> list[str]:
        return [event.event_type for event in await self.events(request_id)]

    async def count(self, model: type[Any]) -> int:
        async with self.session_factory() as session:
            total: int = await session.scalar(select(func.count()).select_from(model)) or 0
            return total

    async def _insert(self, model: type[Any], key: Any, **values: Any) -> uuid.UUID:
        async with self.session_factory() as session, session.begin():
            statement = insert(model).values(**values).returning(key)
            inserted: uuid.UUID = (await session.execute(statement)).scalar_one()
            return inserted
