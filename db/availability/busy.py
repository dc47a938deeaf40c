"""Busy time: when a consultant is taken elsewhere, from their linked calendars.

The calendar sync stores busy intervals (``consultant_busy_intervals``, pieces of at
most a day: adjacent pieces merge back here); a session's
range with its buffers must not overlap any of them. The search, automatic
assignment and the hold read them the same way (``busy_times``) and skip the starts
they overlap; the booking reads them again under the slot's lock when the consultant
confirms, because the sync may have found a new event while the hold waited.

A calendar whose last fetch failed keeps its last good intervals. With
``stale_blocks`` (the ``calendar_stale_blocks_booking`` setting) such a calendar
makes its consultant busy all the time, until a fetch succeeds.
"""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from db.availability.offer import StartRules, buffered

ALWAYS = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
"""The busy range of a consultant whose stale calendar blocks them."""

BUSY_PIECE = timedelta(hours=24)
"""Busy time is stored in pieces of at most this long (``at_most_a_day``), so the
pieces that meet a range start at most this long before it."""

# One scan of the B-tree (consultant, start) for all the consultants (``= ANY``), over
# a range bounded by the longest piece.
_BUSY_SQL = """
    SELECT consultant_user_id, start_time, end_time
      FROM consultant_busy_intervals
     WHERE consultant_user_id = ANY(:ids)
       AND start_time > CAST(:lowest AS timestamptz) - interval '24 hours'
       AND start_time < :highest
       AND end_time > :lowest
"""
_STALE_SQL = """
    SELECT DISTINCT consultant_user_id, '-infinity'::timestamptz, 'infinity'::timestamptz
      FROM consultant_calendars
     WHERE consultant_user_id = ANY(:ids) AND stale_since IS NOT NULL
"""


def _statement(sql: str) -> TextClause:
    return text(sql).bindparams(
        bindparam("ids", type_=ARRAY(UUID(as_uuid=True))),
        bindparam("lowest", type_=DateTime(timezone=True)),
        bindparam("highest", type_=DateTime(timezone=True)),
    )


_BUSY = _statement(_BUSY_SQL)
_BUSY_OR_STALE = _statement(f"{_BUSY_SQL} UNION ALL {_STALE_SQL}")


@dataclass(slots=True)
class BusyTimes:
    """Busy ranges per consultant, merged into disjoint ranges in start order, for the
    stretch of time they were read for."""

    _starts: dict[uuid.UUID, list[datetime]] = field(default_factory=dict)
    _ends: dict[uuid.UUID, list[datetime]] = field(default_factory=dict)

    def overlaps(self, consultant_id: uuid.UUID, start: datetime, end: datetime) -> bool:
        """Whether ``[start, end)`` meets the consultant's busy time."""
        starts = self._starts.get(consultant_id)
        if not starts:
            return False
        # The last busy range starting before ``end`` is the only one that can reach
        # past ``start``: the ranges are disjoint and in order.
        index = bisect.bisect_left(starts, end) - 1
        return index >= 0 and self._ends[consultant_id][index] > start

    def free_starts(
        self, consultant_id: uuid.UUID, starts: Iterable[datetime], rules: StartRules
    ) -> Iterator[datetime]:
        """The ``starts`` whose session, with its buffers, meets no busy time."""
        if consultant_id not in self._starts:
            yield from starts
            return
        for start in starts:
            if not self.overlaps(consultant_id, *buffered(start, start + rules.duration, rules)):
                yield start

    def add(self, consultant_id: uuid.UUID, ranges: Iterable[tuple[datetime, datetime]]) -> None:
        """Merge ``ranges`` into the consultant's busy time."""
        known = zip(
            self._starts.get(consultant_id, ()), self._ends.get(consultant_id, ()), strict=True
        )
        merged: list[tuple[datetime, datetime]] = []
        for start, end in sorted([*known, *ranges]):
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        self._starts[consultant_id] = [start for start, _ in merged]
        self._ends[consultant_id] = [end for _, end in merged]


async def busy_times(
    session: AsyncSession,
    consultant_ids: Collection[uuid.UUID],
    lowest: datetime,
    highest: datetime,
    *,
    stale_blocks: bool,
    into: BusyTimes | None = None,
) -> BusyTimes:
    """The busy time of ``consultant_ids`` that meets ``[lowest, highest)``, added to
    ``into`` if given."""
    busy = into if into is not None else BusyTimes()
    if not consultant_ids or lowest >= highest:
        return busy
    statement = _BUSY_OR_STALE if stale_blocks else _BUSY
    rows = await session.execute(
        statement, {"ids": list(consultant_ids), "lowest": lowest, "highest": highest}
    )
    found: dict[uuid.UUID, list[tuple[datetime, datetime]]] = defaultdict(list)
    for consultant_id, start, end in rows:
        found[consultant_id].append(_bounded(start, end))
    for consultant_id, ranges in found.items():
        busy.add(consultant_id, ranges)
    return busy


async def busy_of_consultant(
    session: AsyncSession,
    consultant_id: uuid.UUID,
    lowest: datetime,
    highest: datetime,
    *,
    linked_calendars: int,
    stale_blocks: bool,
) -> BusyTimes:
    """One consultant's busy time that meets ``[lowest, highest)``; nothing is read
    for a consultant without a linked calendar (``linked_calendars``, the profile's
    count of them, is 0), who cannot be busy."""
    if not linked_calendars:
        return BusyTimes()
    return await busy_times(session, (consultant_id,), lowest, highest, stale_blocks=stale_blocks)


def _bounded(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    # asyncpg reads PostgreSQL's infinities as the datetime extremes without a zone.
    return (
        start if start.tzinfo is not None else ALWAYS[0],
        end if end.tzinfo is not None else ALWAYS[1],
    )
