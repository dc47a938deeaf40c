"""A calendar's busy set and sync state, written together in the caller's transaction.

Every write first locks the calendar's row, so two syncs of one calendar (a "sync
now" beside the periodic one, a retried activity) take turns, and a calendar unlinked
meanwhile is noticed (nothing is written for it). Each write is idempotent: the set
is replaced, never appended to, so running it twice leaves the same rows.

- ``replace_all``: the whole set (a full fetch);
- ``replace_sources``: only the intervals of the named calendar objects (an
  incremental CalDAV sync), the others stay;
- ``keep_set``: the calendar is unchanged (304, same ctag): the set stays, the sync
  counts as a success;
- ``record_failure``: the set stays (the last good one), the calendar is stale since
  the first failure in a row, with the error.

A success clears ``stale_since`` and ``last_error``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.availability.busy import BUSY_PIECE
from db.models import BusyInterval, ConsultantCalendar

INSERT_BATCH = 5000


class TooManyBusyIntervals(Exception):
    """The set would be larger than allowed; nothing of it was written."""


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class SyncState:
    """What the server said, for the next conditional or incremental fetch."""

    etag: str | None = None
    last_modified: str | None = None
    sync_token: str | None = None
    ctag: str | None = None


async def _locked(session: AsyncSession, calendar_id: uuid.UUID) -> ConsultantCalendar | None:
    return await session.get(
        ConsultantCalendar, calendar_id, with_for_update=True, populate_existing=True
    )


async def replace_all(
    session: AsyncSession,
    calendar_id: uuid.UUID,
    busy: Mapping[str, Iterable[Interval]],
    *,
    state: SyncState,
    expanded_until: datetime,
    at: datetime,
    max_intervals: int,
) -> int | None:
    """The calendar's whole set becomes ``busy`` (by source key); returns its size, or
    None if the calendar is gone."""
    calendar = await _locked(session, calendar_id)
    if calendar is None:
        return None
    rows = _rows(calendar, busy)
    if len(rows) > max_intervals:
        raise TooManyBusyIntervals(len(rows))
    await session.execute(delete(BusyInterval).where(BusyInterval.calendar_id == calendar_id))
    await _insert(session, rows)
    _succeeded(calendar, state, at=at, count=len(rows))
    calendar.expanded_until = expanded_until
    return len(rows)


async def replace_sources(
    session: AsyncSession,
    calendar_id: uuid.UUID,
    changed: Mapping[str, Iterable[Interval]],
    deleted: Collection[str],
    *,
    state: SyncState,
    at: datetime,
    max_intervals: int,
) -> int | None:
    """Only the changed and deleted sources' intervals are replaced; returns the set's
    new size, or None if the calendar is gone."""
    calendar = await _locked(session, calendar_id)
    if calendar is None:
        return None
    touched = sorted(set(changed) | set(deleted))
    for first in range(0, len(touched), INSERT_BATCH):
        await session.execute(
            delete(BusyInterval).where(
                BusyInterval.calendar_id == calendar_id,
                BusyInterval.source_key.in_(touched[first : first + INSERT_BATCH]),
            )
        )
    await _insert(session, _rows(calendar, changed))
    count = await session.scalar(
        select(func.count())
        .select_from(BusyInterval)
        .where(BusyInterval.calendar_id == calendar_id)
    )
    assert count is not None
    if count > max_intervals:
        raise TooManyBusyIntervals(count)
    _succeeded(calendar, state, at=at, count=count)
    return count


async def keep_set(
    session: AsyncSession, calendar_id: uuid.UUID, *, state: SyncState, at: datetime
) -> int | None:
    calendar = await _locked(session, calendar_id)
    if calendar is None:
        return None
    _succeeded(calendar, state, at=at, count=calendar.busy_interval_count)
    return calendar.busy_interval_count


async def record_failure(
    session: AsyncSession, calendar_id: uuid.UUID, *, error: str, at: datetime
) -> bool:
    """The last good set stays; False if the calendar is gone."""
    calendar = await _locked(session, calendar_id)
    if calendar is None:
        return False
    calendar.last_attempt_at = at
    calendar.last_error = error[:1000]
    if calendar.stale_since is None:
        calendar.stale_since = at
    return True


def _succeeded(calendar: ConsultantCalendar, state: SyncState, *, at: datetime, count: int) -> None:
    calendar.etag = state.etag
    calendar.last_modified = state.last_modified
    calendar.sync_token = state.sync_token
    calendar.ctag = state.ctag
    calendar.last_attempt_at = at
    calendar.last_success_at = at
    calendar.stale_since = None
    calendar.last_error = None
    calendar.busy_interval_count = count


def _rows(
    calendar: ConsultantCalendar, busy: Mapping[str, Iterable[Interval]]
) -> list[dict[str, object]]:
    return [
        {
            "calendar_id": calendar.id,
            "consultant_user_id": calendar.consultant_user_id,
            "source_key": source,
            "start_time": piece.start,
            "end_time": piece.end,
        }
        for source, intervals in busy.items()
        for interval in intervals
        for piece in _pieces(interval)
    ]


def _pieces(interval: Interval) -> Iterator[Interval]:
    """``interval`` in pieces of at most ``BUSY_PIECE`` (the table's ``at_most_a_day``),
    so that reading busy time is a bounded index range."""
    start = interval.start
    while interval.end - start > BUSY_PIECE:
        yield Interval(start, start + BUSY_PIECE)
        start += BUSY_PIECE
    yield Interval(start, interval.end)


async def _insert(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    for first in range(0, len(rows), INSERT_BATCH):
        await session.execute(insert(BusyInterval), rows[first : first + INSERT_BATCH])


async def busy_of(session: AsyncSession, calendar_id: uuid.UUID) -> list[tuple[str, Interval]]:
    """The calendar's set, ordered (for tests and the export); the stored pieces of
    one interval joined again (one source's intervals never touch: they are merged)."""
    rows = await session.execute(
        select(BusyInterval.source_key, BusyInterval.start_time, BusyInterval.end_time)
        .where(BusyInterval.calendar_id == calendar_id)
        .order_by(BusyInterval.source_key, BusyInterval.start_time)
    )
    joined: list[tuple[str, Interval]] = []
    for source, start, end in rows:
        if joined and joined[-1][0] == source and joined[-1][1].end == start:
            joined[-1] = (source, Interval(joined[-1][1].start, end))
        else:
            joined.append((source, Interval(start, end)))
    return sorted(joined, key=lambda item: (item[1].start, item[0]))
