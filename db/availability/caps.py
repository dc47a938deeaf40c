"""Caps on a consultant's sessions per day and per week, counted on their own clock.

A consultant may cap their sessions of any type (``consultant_profiles``) and of one
service type (``consultant_service_limits``), per day and per (ISO, Monday-first)
week, both in their own time zone, so a day is 23 or 25 hours long across a DST
change. What counts: the sessions not cancelled, and the holds still held (a hold
counts while a consultant decides on it), one per request — a request moving its
session holds its new time while the old one is still booked, and counts once a day.

The guarantee is a lock, not a check before it: a hold takes the consultant's
advisory lock (``lock_consultant``) in its own transaction and counts under it, so
two holds for one consultant's day are decided one after the other, each seeing
what the one before committed. The availability search and automatic assignment
count the same way without the lock, to offer only what a hold would accept.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    DateTime,
    and_,
    any_,
    bindparam,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import SessionStatus, SlotStatus
from db.availability.offer import Refusal
from db.models import (
    AvailabilitySlot,
    ConsultantProfile,
    ConsultantServiceLimit,
    ConsultationRequest,
    ScheduledSession,
)

CAPS_LOCK_CLASS = 0x0B0C_0002
"""First key of the two-key advisory lock on one consultant's caps (the second is a
hash of the consultant id); apart from the open-request lock's ``0x0B0C_0001``."""

COUNTED_SESSION_STATUSES = tuple(
    status.value
    for status in SessionStatus
    if status
    not in (
        SessionStatus.CANCELLED,
        SessionStatus.CANCELLED_BY_USER,
        SessionStatus.CANCELLED_BY_CONSULTANT,
    )
)

MAX_BUFFER = timedelta(minutes=240)
"""A held slot starts at most this long before its session (the buffer's bound)."""


@dataclass(frozen=True, slots=True)
class Caps:
    """At most this many sessions a day / a week: of any type, and of the one type."""

    per_day: int | None = None
    per_week: int | None = None
    type_per_day: int | None = None
    type_per_week: int | None = None

    @property
    def weekly(self) -> bool:
        return self.per_week is not None or self.type_per_week is not None

    @property
    def any(self) -> bool:
        return any(
            cap is not None
            for cap in (self.per_day, self.per_week, self.type_per_day, self.type_per_week)
        )


NO_CAPS = Caps()


def held_session_start() -> ColumnElement[datetime]:
    """Where the session of a held or booked slot starts: after its before-buffer."""
    slot = AvailabilitySlot
    return slot.start_time + func.make_interval(0, 0, 0, 0, 0, slot.buffer_before_minutes)


class Counted(NamedTuple):
    """A session or hold that counts towards its consultant's caps."""

    consultant_id: uuid.UUID
    request_id: uuid.UUID
    start: datetime
    service_type_id: uuid.UUID


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def week_of(day: date) -> date:
    """The Monday that begins ``day``'s week."""
    return day - timedelta(days=day.weekday())


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A local day as an instant range: local midnight to the next local midnight."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


def counting_range(
    start: datetime, end: datetime, zone: ZoneInfo, caps: Caps
) -> tuple[datetime, datetime]:
    """The range whose bookings decide ``caps`` for every start in ``[start, end]``:
    the whole local days around them, or the whole local weeks with a weekly cap."""
    first, last = local_day(start, zone), local_day(end, zone)
    if caps.weekly:
        first, last = week_of(first), week_of(last) + timedelta(days=6)
    return day_bounds(first, zone)[0], day_bounds(last, zone)[1]


class Ledger:
    """One consultant's counted bookings, and the verdict of the caps on a start."""

    def __init__(
        self,
        caps: Caps,
        counted: Iterable[Counted],
        *,
        zone: ZoneInfo,
        service_type_id: uuid.UUID | None,
    ) -> None:
        self.caps = caps
        self._zone = zone
        # Plain dicts filled with setdefault: a search builds a ledger for every capped
        # consultant it meets, and most of them have nothing counted in the span.
        self._per_day: dict[date, set[uuid.UUID]] = {}
        self._per_week: dict[date, set[uuid.UUID]] = {}
        self._type_per_day: dict[date, set[uuid.UUID]] = {}
        self._type_per_week: dict[date, set[uuid.UUID]] = {}
        for booking in counted:
            day = local_day(booking.start, zone)
            week = week_of(day)
            self._per_day.setdefault(day, set()).add(booking.request_id)
            self._per_week.setdefault(week, set()).add(booking.request_id)
            if booking.service_type_id == service_type_id:
                self._type_per_day.setdefault(day, set()).add(booking.request_id)
                self._type_per_week.setdefault(week, set()).add(booking.request_id)

    def refusal(self, start: datetime) -> Refusal | None:
        """Why one more session starting at ``start`` would break a cap (None: it
        would not)."""
        caps = self.caps
        day = local_day(start, self._zone)
        week = week_of(day)
        if _full(caps.per_day, self._per_day.get(day)) or _full(
            caps.type_per_day, self._type_per_day.get(day)
        ):
            return Refusal.DAILY_CAP
        if _full(caps.per_week, self._per_week.get(week)) or _full(
            caps.type_per_week, self._type_per_week.get(week)
        ):
            return Refusal.WEEKLY_CAP
        return None

    def admitted(self, starts: Iterable[datetime]) -> Iterator[datetime]:
        """The ``starts`` (in order) that the caps admit, one at a time."""
        return (start for start in starts if self.refusal(start) is None)


def _full(cap: int | None, counted: set[uuid.UUID] | None) -> bool:
    return cap is not None and len(counted or ()) >= cap


async def lock_consultant(session: AsyncSession, consultant_id: uuid.UUID) -> None:
    """Serialise the cap decisions for ``consultant_id`` until this transaction ends."""
    await session.execute(
        select(func.pg_advisory_xact_lock(CAPS_LOCK_CLASS, func.hashtext(str(consultant_id))))
    )


async def caps_of(
    session: AsyncSession, consultant_ids: Collection[uuid.UUID], service_type_id: uuid.UUID
) -> dict[uuid.UUID, Caps]:
    """The caps of each of ``consultant_ids`` that has any, for sessions of the type."""
    profile, limit = ConsultantProfile, ConsultantServiceLimit
    rows = await session.execute(
        select(
            profile.consultant_user_id,
            profile.max_sessions_per_day,
            profile.max_sessions_per_week,
            limit.max_sessions_per_day,
            limit.max_sessions_per_week,
        )
        .outerjoin(
            limit,
            and_(
                limit.consultant_user_id == profile.consultant_user_id,
                limit.consultation_service_type_id == service_type_id,
            ),
        )
        .where(
            profile.consultant_user_id
            == any_(literal(list(consultant_ids), ARRAY(UUID(as_uuid=True))))
        )
    )
    found = {row[0]: Caps(*row[1:]) for row in rows}
    return {consultant: caps for consultant, caps in found.items() if caps.any}


async def counted_bookings(
    session: AsyncSession,
    consultant_ids: Collection[uuid.UUID],
    start: datetime,
    end: datetime,
    *,
    excluding_request: uuid.UUID | None = None,
) -> list[Counted]:
    """The sessions and live holds of ``consultant_ids`` that start in ``[start, end)``
    (a hold's session starts its before-buffer after the slot)."""
    params: dict[str, object] = {"ids": list(consultant_ids), "start": start, "end": end}
    if excluding_request is not None:
        params["excluded"] = excluding_request
    rows = await session.execute(_counting_statement(excluding_request is not None), params)
    return [Counted(*row) for row in rows]


@functools.cache
def _counting_statement(excluding: bool) -> CompoundSelect[*tuple[Any, ...]]:
    """``counted_bookings``' statement, built once: the search counts caps for every
    page, and building a statement of this size each time costs more than running it.
    One array parameter, not an IN list: the same text for any number of consultants,
    so it is prepared once per connection, not once per count."""
    ids = bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))
    start = bindparam("start", type_=DateTime(timezone=True))
    end = bindparam("end", type_=DateTime(timezone=True))
    sessions = select(
        ScheduledSession.consultant_user_id,
        ScheduledSession.consultation_request_id,
        ScheduledSession.scheduled_start_time,
        ScheduledSession.consultation_service_type_id,
    ).where(
        ScheduledSession.consultant_user_id == any_(ids),
        ScheduledSession.scheduled_start_time >= start,
        ScheduledSession.scheduled_start_time < end,
        ScheduledSession.status.in_(COUNTED_SESSION_STATUSES),
    )
    slot, request = AvailabilitySlot, ConsultationRequest
    session_start = held_session_start()
    holds = (
        select(
            slot.consultant_user_id,
            request.id,
            session_start,
            request.consultation_service_type_id,
        )
        .join(request, request.id == slot.held_by_request_id)
        .where(
            slot.consultant_user_id == any_(ids),
            slot.status == literal(SlotStatus.HELD.value, literal_execute=True),
            or_(slot.hold_expires_at.is_(None), slot.hold_expires_at > func.now()),
            slot.start_time >= start - MAX_BUFFER,
            slot.start_time < end,
            session_start >= start,
            session_start < end,
        )
    )
    if excluding:
        excluded = bindparam("excluded", type_=UUID(as_uuid=True))
        sessions = sessions.where(ScheduledSession.consultation_request_id != excluded)
        holds = holds.where(request.id != excluded)
    return union_all(sessions, holds)


async def ledgers(
    session: AsyncSession,
    caps: dict[uuid.UUID, Caps],
    zones: dict[uuid.UUID, ZoneInfo],
    start: datetime,
    end: datetime,
    *,
    service_type_id: uuid.UUID | None,
    excluding_request: uuid.UUID | None = None,
) -> dict[uuid.UUID, Ledger]:
    """A ledger per capped consultant, for the starts in ``[start, end]``."""
    if not caps:
        return {}
    lowest, highest = start, end
    # Consultants share a handful of zones: one range per zone and kind of cap, not
    # one per consultant (a search counts for up to a few hundred of them).
    ranges: dict[tuple[ZoneInfo, bool], tuple[datetime, datetime]] = {}
    for consultant, consultant_caps in caps.items():
        key = (zones[consultant], consultant_caps.weekly)
        if key not in ranges:
            ranges[key] = counting_range(start, end, key[0], consultant_caps)
    for low, high in ranges.values():
        lowest, highest = min(lowest, low), max(highest, high)
    counted = await counted_bookings(
        session, caps, lowest, highest, excluding_request=excluding_request
    )
    by_consultant: dict[uuid.UUID, list[Counted]] = defaultdict(list)
    for booking in counted:
        by_consultant[booking.consultant_id].append(booking)
    return {
        consultant: Ledger(
            consultant_caps,
            by_consultant.get(consultant, ()),
            zone=zones[consultant],
            service_type_id=service_type_id,
        )
        for consultant, consultant_caps in caps.items()
    }
