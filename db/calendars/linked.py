"""A consultant's linked calendars: creating, reading, removing, and finding the ones
whose sync is overdue."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BusyInterval, ConsultantCalendar, ConsultantProfile


@dataclass(frozen=True)
class NewCalendar:
    """A calendar to link, its secrets already sealed (``integrations.calendars.secrets``)."""

    calendar_id: uuid.UUID
    consultant_id: uuid.UUID
    kind: str
    display_name: str | None
    address_ciphertext: bytes
    address_hint: str
    username: str | None
    password_ciphertext: bytes | None


async def link(session: AsyncSession, new: NewCalendar) -> ConsultantCalendar:
    calendar = ConsultantCalendar(
        id=new.calendar_id,
        consultant_user_id=new.consultant_id,
        kind=new.kind,
        display_name=new.display_name,
        address_ciphertext=new.address_ciphertext,
        address_hint=new.address_hint,
        username=new.username,
        password_ciphertext=new.password_ciphertext,
    )
    session.add(calendar)
    await session.flush()
    await session.refresh(calendar)
    return calendar


async def calendars_of(session: AsyncSession, consultant_id: uuid.UUID) -> list[ConsultantCalendar]:
    query = (
        select(ConsultantCalendar)
        .where(ConsultantCalendar.consultant_user_id == consultant_id)
        .order_by(ConsultantCalendar.created_at, ConsultantCalendar.id)
    )
    return list((await session.scalars(query)).all())


async def calendar_ids_of(session: AsyncSession, consultant_id: uuid.UUID) -> list[uuid.UUID]:
    query = (
        select(ConsultantCalendar.id)
        .where(ConsultantCalendar.consultant_user_id == consultant_id)
        .order_by(ConsultantCalendar.created_at, ConsultantCalendar.id)
    )
    return list((await session.scalars(query)).all())


async def calendar_of(
    session: AsyncSession, consultant_id: uuid.UUID, calendar_id: uuid.UUID
) -> ConsultantCalendar | None:
    calendar = await session.get(ConsultantCalendar, calendar_id)
    if calendar is None or calendar.consultant_user_id != consultant_id:
        return None
    return calendar


@dataclass(frozen=True)
class CalendarToSync:
    """What a sync needs of a calendar: its row (secrets sealed) and the zone its
    consultant's all-day and floating events are read in."""

    calendar: ConsultantCalendar
    time_zone: str


async def calendar_to_sync(session: AsyncSession, calendar_id: uuid.UUID) -> CalendarToSync | None:
    row = (
        await session.execute(
            select(ConsultantCalendar, ConsultantProfile.time_zone)
            .join(
                ConsultantProfile,
                ConsultantProfile.consultant_user_id == ConsultantCalendar.consultant_user_id,
            )
            .where(ConsultantCalendar.id == calendar_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return CalendarToSync(calendar=row[0], time_zone=row[1])


async def unlink(session: AsyncSession, calendar: ConsultantCalendar) -> None:
    """The calendar and its busy time (the foreign key cascades)."""
    await session.delete(calendar)
    await session.flush()


async def delete_calendars_of(session: AsyncSession, consultant_ids: Collection[uuid.UUID]) -> int:
    """Every calendar of these consultants, with its credentials and busy time (erasure)."""
    await session.execute(
        delete(BusyInterval).where(BusyInterval.consultant_user_id.in_(consultant_ids))
    )
    result = await session.execute(
        delete(ConsultantCalendar)
        .where(ConsultantCalendar.consultant_user_id.in_(consultant_ids))
        .returning(ConsultantCalendar.id)
    )
    return len(result.all())


async def consultants_overdue(
    session: AsyncSession, *, attempted_before: datetime, linked_before: datetime, limit: int
) -> list[uuid.UUID]:
    """Consultants with a calendar that no sync has tried since ``attempted_before``
    (or ever, if it was linked before ``linked_before``): their sync workflow is not
    running, e.g. Temporal was unreachable when the calendar was linked."""
    calendar = ConsultantCalendar
    query = (
        select(calendar.consultant_user_id)
        .where(
            or_(
                calendar.last_attempt_at < attempted_before,
                (calendar.last_attempt_at.is_(None)) & (calendar.created_at < linked_before),
            )
        )
        .group_by(calendar.consultant_user_id)
        .order_by(func.min(calendar.created_at))
        .limit(limit)
    )
    return list((await session.scalars(query)).all())
