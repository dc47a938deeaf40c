"""Ranking the consultants who could take a request.

Eligible: available for booking, the service type's specialization (if any), not
excluded for this request (declined or timed out), and a free slot that offers a
start (``db.availability.offer``: on the grid, from ``not_before``, the session
ending by the window's end, its buffers free, within the type's horizon) that their
calendar's busy time leaves free, on a day and in a week where the consultant is
below their caps; with a requested slot, a
free piece of that slot as it was published (another request may have carved it
meanwhile).
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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

from sqlalchemy import DateTime, Interval, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from db.availability.holds import published_slot_id
from db.availability.offer import WHOLE_MINUTES, Refusal
from db.availability.policy import NO_TIME, ServicePolicy
from db.availability.search import SearchCriteria, SlotPolicies, search_statement
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


async def _fits_for(
    session: AsyncSession, query: CandidateQuery, *, stale_calendars_block: bool
) -> _Fits | None:
    """How to find the request's fits (None: the service type was withdrawn, so
    nobody can take the request)."""
    service = (
        await session.execute(
            select(ServiceType, func.now()).where(
                ServiceType.id == query.service_type_id, ServiceType.is_active.is_(True)
            )
        )
    ).one_or_none()
    if service is None:
        return None
    service_type, now = service
    # Notice is the workflow's (in ``not_before``); buffers and horizon are the type's.
    policy = ServicePolicy.of(service_type, minimum_notice=NO_TIME, cancel_cutoff=NO_TIME)
    # Plan with the actual values (see db.search): a generic plan would misjudge the range.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return _Fits(
        query,
        service_type.required_specialization,
        policy,
        now,
        stale_calendars_block=stale_calendars_block,
    )


async def policy_in_the_way(
    session: AsyncSession, query: CandidateQuery, *, stale_calendars_block: bool = False
) -> Refusal | None:
    """For a request only one consultant may serve (an operator's choice) who has no
    start on offer: the scheduling policy without which they would have one, if any
    (caps first, then their calendar's busy time, then buffers, then the horizon)."""
    fits = await _fits_for(session, query, stale_calendars_block=stale_calendars_block)
    consultant_id = query.only_consultant_id
    if fits is None or consultant_id is None:
        return None
    uncapped = replace(fits, count_caps=False)
    found = (await uncapped.earliest(session, consultant_id)).get(consultant_id)
    if found is not None:
        return await fits.cap_refusal(session, found)
    uncapped = replace(uncapped, busy=False)
    if (await uncapped.earliest(session, consultant_id)).get(consultant_id) is not None:
        return Refusal.CALENDAR_BUSY
    unbuffered = replace(uncapped, buffers=False)
    if (await unbuffered.earliest(session, consultant_id)).get(consultant_id) is not None:
        return Refusal.BUFFER
    unbounded = replace(uncapped, policy=replace(fits.policy, horizon=None))
    if (await unbounded.earliest(session, consultant_id)).get(consultant_id) is not None:
        return Refusal.BEYOND_HORIZON
    return None


async def rank_candidates(
    session: AsyncSession, query: CandidateQuery, *, stale_calendars_block: bool = False
) -> list[Candidate]:
    fits = await _fits_for(session, query, stale_calendars_block=stale_calendars_block)
    if fits is None:
        return []
    earliest = await fits.earliest(session, query.only_consultant_id)
    preferred = query.preferred_consultant_id
    if (
        preferred is not None
        and preferred not in earliest
        and preferred not in query.excluded_consultant_ids
        and query.only_consultant_id in (None, preferred)
    ):
        earliest.update(await fits.earliest(session, preferred, depth=PREFERRED_DEPTH))
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


@dataclass(frozen=True, slots=True)
class _Fits:
    query: CandidateQuery
    specialization: str | None
    policy: ServicePolicy
    now: datetime
    count_caps: bool = True
    buffers: bool = True
    busy: bool = True
    stale_calendars_block: bool = False

    async def cap_refusal(self, session: AsyncSession, candidate: Candidate) -> Refusal | None:
        """Which cap refuses ``candidate``'s start (None: none does)."""
        criteria = self._criteria(candidate.consultant_id)
        rows = (
            await search_statement(criteria)
            .where(AvailabilitySlot.id == candidate.slot_id)
            .rows(session)
        )
        policies = SlotPolicies(criteria)
        await policies.load(session, rows)
        return policies.cap_refusal(candidate.consultant_id, candidate.start)

    def _criteria(
        self, consultant_id: uuid.UUID | None, depth: int = SEARCH_DEPTH
    ) -> SearchCriteria:
        query = self.query
        return SearchCriteria(
            window_start=query.not_before,
            window_end=query.window_end,
            duration=timedelta(minutes=query.duration_minutes),
            specializations=(self.specialization,) if self.specialization else (),
            consultant_id=consultant_id,
            limit=depth,
            start_interval_minutes=query.start_interval_minutes or WHOLE_MINUTES,
            service_type_id=query.service_type_id,
            buffer_before=self.policy.buffer_before if self.buffers else NO_TIME,
            buffer_after=self.policy.buffer_after if self.buffers else NO_TIME,
            starts_by=self.policy.starts_by(self.now),
            busy=self.busy,
            stale_calendars_block=self.stale_calendars_block,
        )

    async def earliest(
        self, session: AsyncSession, consultant_id: uuid.UUID | None, *, depth: int = SEARCH_DEPTH
    ) -> dict[uuid.UUID, Candidate]:
        """Each consultant's earliest start that every policy admits, in the order of
        those starts."""
        query = self.query
        duration = timedelta(minutes=query.duration_minutes)
        criteria = self._criteria(consultant_id, depth)
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
        rows = await statement.rows(session)
        policies = SlotPolicies(
            criteria, count_caps=self.count_caps, consultant_buffers=self.buffers
        )
        await policies.load(session, rows)
        fits: dict[uuid.UUID, Candidate] = {}
        for slot in rows:
            if slot.consultant_id in fits:
                continue
            start = next(policies.starts(slot), None)
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
