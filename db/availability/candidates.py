"""Ranking the consultants who could take a request.

Eligible: available for booking, the service type's specialization (if any), not
excluded for this request (declined or timed out), and a free slot that offers a
start (``db.availability.offer``: on the grid, from ``not_before``, the session
ending by the window's end); with a requested slot, a free piece of that slot as it
was published (another request may have carved it meanwhile).
Order: the preferred consultant first when eligible, then the earliest fit, then
the fewest sessions in the week around that fit, then the least recently assigned
(never assigned first).

The free slots come from the availability search's own statement
(``db.availability.search.search_statement``), which walks the partial start-time index of
available slots; the week's load is counted per candidate on
``ix_scheduled_sessions_consultant_start``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

from sqlalchemy import DateTime, Interval, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from db.availability.holds import published_slot_id
from db.availability.offer import WHOLE_MINUTES, first_offered
from db.availability.search import FreeSlotRow, SearchCriteria, search_statement
from db.models import AvailabilitySlot, ServiceType

SEARCH_DEPTH = 200
"""Free slots read, earliest first; enough to see every consultant who could
compete for the first places."""

PREFERRED_DEPTH = 20
"""Free slots of the preferred consultant read when the first places went to others:
their earliest one may offer no start on the grid, a later one does."""

HALF_WEEK = timedelta(days=3, hours=12)

_WEEK_LOADS = text(
    """
    SELECT c.consultant_id,
           p.last_assigned_at,
           (SELECT count(*)
              FROM scheduled_sessions s
             WHERE s.consultant_user_id = c.consultant_id
               AND s.scheduled_start_time >= c.fit - CAST(:half_week AS interval)
               AND s.scheduled_start_time < c.fit + CAST(:half_week AS interval)
               AND s.status IN ('scheduled', 'in_progress', 'completed')) AS sessions
      FROM unnest(:ids, :fits) AS c(consultant_id, fit)
      JOIN consultant_profiles p ON p.consultant_user_id = c.consultant_id
    """
).bindparams(
    bindparam("ids", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("fits", type_=ARRAY(DateTime(timezone=True))),
    bindparam("half_week", type_=Interval()),
)

NEVER = datetime.min.replace(tzinfo=UTC)


class CandidateQuery(Protocol):
    """Who could take the request (the assignment activity's input has these fields)."""

    @property
    def service_type_id(self) -> uuid.UUID: ...
    @property
    def duration_minutes(self) -> int: ...
    @property
    def not_before(self) -> datetime: ...
    @property
    def window_end(self) -> datetime: ...
    @property
    def requested_slot_id(self) -> uuid.UUID | None: ...
    @property
    def preferred_consultant_id(self) -> uuid.UUID | None: ...
    @property
    def only_consultant_id(self) -> uuid.UUID | None: ...
    @property
    def excluded_consultant_ids(self) -> tuple[uuid.UUID, ...]: ...
    @property
    def limit(self) -> int: ...
    @property
    def start_interval_minutes(self) -> int | None: ...


class Candidate(NamedTuple):
    """A consultant's earliest fitting free slot, and the session's times in it."""

    consultant_id: uuid.UUID
    slot_id: uuid.UUID
    start: datetime
    end: datetime


async def rank_candidates(session: AsyncSession, query: CandidateQuery) -> list[Candidate]:
    service = (
        await session.execute(
            select(ServiceType.required_specialization).where(
                ServiceType.id == query.service_type_id, ServiceType.is_active.is_(True)
            )
        )
    ).one_or_none()
    if service is None:
        return []  # the service type was withdrawn: nobody can take the request
    specialization = service.required_specialization
    # Plan with the actual values (see db.search): a generic plan would misjudge the range.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    earliest = await _earliest_fits(session, query, specialization, query.only_consultant_id)
    preferred = query.preferred_consultant_id
    if (
        preferred is not None
        and preferred not in earliest
        and preferred not in query.excluded_consultant_ids
        and query.only_consultant_id in (None, preferred)
    ):
        earliest.update(
            await _earliest_fits(session, query, specialization, preferred, depth=PREFERRED_DEPTH)
        )
    if not earliest:
        return []
    loads = await _week_loads(session, list(earliest.values()))

    def rank(candidate: Candidate) -> tuple[bool, datetime, int, datetime]:
        sessions, last_assigned = loads.get(candidate.consultant_id, (0, None))
        return (
            candidate.consultant_id != preferred,
            candidate.start,
            sessions,
            last_assigned or NEVER,
        )

    return sorted(earliest.values(), key=rank)[: query.limit]


async def _earliest_fits(
    session: AsyncSession,
    query: CandidateQuery,
    specialization: str | None,
    consultant_id: uuid.UUID | None,
    *,
    depth: int = SEARCH_DEPTH,
) -> dict[uuid.UUID, Candidate]:
    """Each consultant's earliest offered start, in the order of those starts."""
    duration = timedelta(minutes=query.duration_minutes)
    criteria = SearchCriteria(
        window_start=query.not_before,
        window_end=query.window_end,
        duration=duration,
        specializations=(specialization,) if specialization else (),
        consultant_id=consultant_id,
        limit=depth,
        start_interval_minutes=query.start_interval_minutes or WHOLE_MINUTES,
    )
    published: uuid.UUID | None = None
    if query.requested_slot_id is not None:
        requested = await _published_slot(session, query.requested_slot_id)
        if requested is None or consultant_id not in (None, requested[0]):
            return {}
        criteria = replace(criteria, consultant_id=requested[0])
        published = requested[1]
    statement = search_statement(criteria)
    if query.excluded_consultant_ids:
        statement = statement.where(
            AvailabilitySlot.consultant_user_id.not_in(query.excluded_consultant_ids)
        )
    if published is not None:
        statement = statement.where(published_slot_id() == published)
    rules = criteria.rules
    fits: dict[uuid.UUID, Candidate] = {}
    for row in await session.execute(statement):
        slot = FreeSlotRow(*row)
        if slot.consultant_id in fits:
            continue
        start = first_offered(slot.free, rules)
        if start is not None:
            fits[slot.consultant_id] = Candidate(
                consultant_id=slot.consultant_id,
                slot_id=slot.slot_id,
                start=start,
                end=start + duration,
            )
    return fits


async def _published_slot(
    session: AsyncSession, slot_id: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The consultant of a slot and the slot it was published as."""
    row = (
        await session.execute(
            select(AvailabilitySlot.consultant_user_id, published_slot_id()).where(
                AvailabilitySlot.id == slot_id
            )
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def _week_loads(
    session: AsyncSession, candidates: list[Candidate]
) -> dict[uuid.UUID, tuple[int, datetime | None]]:
    rows = await session.execute(
        _WEEK_LOADS,
        {
            "ids": [c.consultant_id for c in candidates],
            "fits": [c.start for c in candidates],
            "half_week": HALF_WEEK,
        },
    )
    return {row.consultant_id: (row.sessions, row.last_assigned_at) for row in rows}
