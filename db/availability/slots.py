"""The slots consultants publish: create, change, delete and list them.

- Inserts are all or nothing, and the guard against overlaps is the exclusion
  constraint ``ex_availability_slots_no_overlap``: two concurrent requests cannot both
  pass a check and then both insert. The conflicting slots are only looked up
  afterwards, to tell the caller which ones they are.
- Status changes and deletes are conditional statements (``... WHERE status IN
  (free statuses)``), so a slot that a workflow holds or books in the meantime is
  never touched.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import SlotStatus
from db.errors import (
    DEADLOCK_DETECTED,
    EXCLUSION_VIOLATION,
    FOREIGN_KEY_VIOLATION,
    sqlstate,
)
from db.models import AvailabilitySlot

MAX_SLOT_LENGTH = timedelta(hours=24)
"""The longest slot one may publish. The search relies on it: a slot that could still
reach into a window must start at most this long before the window, which keeps the
search a bounded range scan of the start-time index."""

FREE_STATUSES: tuple[SlotStatus, ...] = (SlotStatus.AVAILABLE, SlotStatus.UNAVAILABLE)
"""Statuses the consultant controls; ``held`` and ``booked`` belong to a workflow."""

_DEADLOCK_RETRIES = 3


class TimeRange(NamedTuple):
    """A half-open ``[start, end)`` stretch of time, both ends timezone-aware."""

    start: datetime
    end: datetime


class ConsultantNotFoundError(LookupError):
    """The consultant has no profile (any more)."""


class SlotNotFoundError(LookupError):
    """No such slot for this consultant."""


class SlotNotFreeError(Exception):
    """The slot is held or booked by a consultation, so the consultant cannot change it."""

    def __init__(self, slot: AvailabilitySlot) -> None:
        super().__init__(f"slot {slot.id} is {slot.status}")
        self.slot = slot


class SlotOverlapError(Exception):
    """The new slots overlap existing ones (``conflicts``) or each other (``in_request``)."""

    def __init__(self, conflicts: list[AvailabilitySlot], in_request: list[TimeRange]) -> None:
        super().__init__(f"{len(conflicts)} existing slot(s) overlap")
        self.conflicts = conflicts
        self.in_request = in_request


# --- Commands -----------------------------------------------------------------------


async def create_slots(
    session: AsyncSession, consultant_id: uuid.UUID, ranges: Sequence[TimeRange]
) -> list[AvailabilitySlot]:
    """Insert all ``ranges`` as available slots, all or none, in the caller's transaction.

    Raises ``SlotOverlapError`` (nothing inserted) when any of them overlaps an existing
    slot or another one of them, ``ConsultantNotFoundError`` when the profile is gone.
    """
    # Start order: concurrent batches then lock in the same order, so they seldom
    # deadlock; when they do, PostgreSQL aborts one, whose savepoint is rolled back
    # (releasing its locks) and which then waits for the other and tries again.
    rows = [
        {"consultant_user_id": consultant_id, "start_time": r.start, "end_time": r.end}
        for r in sorted(ranges)
    ]
    for attempt in range(_DEADLOCK_RETRIES + 1):
        try:
            async with session.begin_nested():
                result = await session.scalars(
                    insert(AvailabilitySlot).returning(AvailabilitySlot), rows
                )
                return sorted(result.all(), key=lambda slot: slot.start_time)
        except DBAPIError as exc:
            code = sqlstate(exc)
            if code == DEADLOCK_DETECTED and attempt < _DEADLOCK_RETRIES:
                continue
            if code in (EXCLUSION_VIOLATION, DEADLOCK_DETECTED):
                conflicts = await find_overlapping(session, consultant_id, ranges)
                raise SlotOverlapError(conflicts, overlapping_each_other(ranges)) from exc
            if code == FOREIGN_KEY_VIOLATION:
                raise ConsultantNotFoundError(consultant_id) from exc
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


async def change_free_status(
    session: AsyncSession, consultant_id: uuid.UUID, slot_id: uuid.UUID, status: SlotStatus
) -> AvailabilitySlot:
    """Set a free slot ``available`` or ``unavailable``."""
    assert status in FREE_STATUSES
    statement = (
        update(AvailabilitySlot)
        .where(
            AvailabilitySlot.id == slot_id,
            AvailabilitySlot.consultant_user_id == consultant_id,
            AvailabilitySlot.status.in_(FREE_STATUSES),
        )
        .values(status=status.value)
        .returning(AvailabilitySlot)
        .execution_options(populate_existing=True)
    )
    slot = (await session.scalars(statement)).one_or_none()
    if slot is None:
        raise await _why_not_free(session, consultant_id, slot_id)
    return slot


async def delete_free_slot(
    session: AsyncSession, consultant_id: uuid.UUID, slot_id: uuid.UUID
) -> None:
    """Delete a free slot."""
    statement = (
        delete(AvailabilitySlot)
        .where(
            AvailabilitySlot.id == slot_id,
            AvailabilitySlot.consultant_user_id == consultant_id,
            AvailabilitySlot.status.in_(FREE_STATUSES),
        )
        .returning(AvailabilitySlot.id)
    )
    if (await session.execute(statement)).first() is None:
        raise await _why_not_free(session, consultant_id, slot_id)


async def _why_not_free(
    session: AsyncSession, consultant_id: uuid.UUID, slot_id: uuid.UUID
) -> SlotNotFoundError | SlotNotFreeError:
    """After a conditional write touched nothing: the slot is missing or not free."""
    slot = await get_slot(session, consultant_id, slot_id)
    if slot is None:
        return SlotNotFoundError(slot_id)
    return SlotNotFreeError(slot)


# --- Queries ------------------------------------------------------------------------


async def get_slot(
    session: AsyncSession, consultant_id: uuid.UUID, slot_id: uuid.UUID
) -> AvailabilitySlot | None:
    statement = select(AvailabilitySlot).where(
        AvailabilitySlot.id == slot_id, AvailabilitySlot.consultant_user_id == consultant_id
    )
    return (await session.scalars(statement)).one_or_none()


async def list_slots(
    session: AsyncSession,
    consultant_id: uuid.UUID,
    *,
    window: tuple[datetime | None, datetime | None] = (None, None),
    statuses: Iterable[SlotStatus] | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int,
) -> list[AvailabilitySlot]:
    """A consultant's slots overlapping ``window`` in start order, after the keyset
    position ``after`` (start, id)."""
    start, end = window
    statement = (
        select(AvailabilitySlot)
        .where(AvailabilitySlot.consultant_user_id == consultant_id)
        .order_by(AvailabilitySlot.start_time, AvailabilitySlot.id)
        .limit(limit)
    )
    if start is not None:
        statement = statement.where(AvailabilitySlot.end_time > start)
    if end is not None:
        statement = statement.where(AvailabilitySlot.start_time < end)
    if statuses is not None:
        statement = statement.where(AvailabilitySlot.status.in_([s.value for s in statuses]))
    if after is not None:
        statement = statement.where(
            tuple_(AvailabilitySlot.start_time, AvailabilitySlot.id) > tuple_(*after)
        )
    return list((await session.scalars(statement)).all())


async def find_overlapping(
    session: AsyncSession, consultant_id: uuid.UUID, ranges: Sequence[TimeRange]
) -> list[AvailabilitySlot]:
    """The consultant's existing slots that overlap any of ``ranges``, in start order."""
    if not ranges:
        return []
    merged = _merge(ranges)
    statement = (
        select(AvailabilitySlot)
        .where(
            AvailabilitySlot.consultant_user_id == consultant_id,
            AvailabilitySlot.start_time < merged[-1].end,
            AvailabilitySlot.end_time > merged[0].start,
        )
        .order_by(AvailabilitySlot.start_time)
    )
    candidates = (await session.scalars(statement)).all()
    starts = [r.start for r in merged]
    return [s for s in candidates if _hits(merged, starts, s.start_time, s.end_time)]


def overlapping_each_other(ranges: Sequence[TimeRange]) -> list[TimeRange]:
    """The ranges (in start order) that overlap at least one other range in ``ranges``."""
    ordered = sorted(ranges)
    flagged: set[int] = set()
    reach_index = 0  # the range reaching furthest so far
    for index in range(1, len(ordered)):
        if ordered[index].start < ordered[reach_index].end:
            flagged.update((reach_index, index))
        if ordered[index].end > ordered[reach_index].end:
            reach_index = index
    return [ordered[i] for i in sorted(flagged)]


def _merge(ranges: Sequence[TimeRange]) -> list[TimeRange]:
    """Sorted, disjoint ranges covering the same time as ``ranges``."""
    merged: list[TimeRange] = []
    for current in sorted(ranges):
        if merged and current.start <= merged[-1].end:
            merged[-1] = TimeRange(merged[-1].start, max(merged[-1].end, current.end))
        else:
            merged.append(current)
    return merged


def _hits(merged: list[TimeRange], starts: list[datetime], start: datetime, end: datetime) -> bool:
    """Whether ``[start, end)`` overlaps one of the disjoint, sorted ``merged`` ranges."""
    index = bisect_left(starts, end) - 1  # the last range starting before ``end``
    return index >= 0 and merged[index].end > start
