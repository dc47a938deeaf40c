"""Bookable times: free slots that can fit a session inside a window.

The query is shaped for ``ix_availability_slots_available_start`` (start_time, id)
WHERE status = 'available' INCLUDE (end_time, consultant_user_id): the planner walks
that index in start order over a bounded start-time range, checks the end from the
index tuple, looks up each consultant by primary key and stops at the page size. It
never sorts: a page costs the slots it reads, not the size of the table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Select, func, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from core.vocabulary import SlotStatus
from db.availability.slots import MAX_SLOT_LENGTH
from db.models import AvailabilitySlot, ConsultantProfile


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    """Where to look. A bookable time starts and ends inside ``[window_start, window_end)``."""

    window_start: datetime
    window_end: datetime
    duration: timedelta
    specializations: tuple[str, ...] = ()
    consultant_id: uuid.UUID | None = None
    after: tuple[datetime, uuid.UUID] | None = None  # keyset: (slot start, slot id)
    limit: int = 50


@dataclass(frozen=True, slots=True)
class BookableTime:
    """The earliest time a session fits into one free slot."""

    slot_id: uuid.UUID
    consultant_user_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    slot_start: datetime
    slot_end: datetime


SearchSelect = Select[uuid.UUID, uuid.UUID, datetime, datetime, datetime]
"""slot id, consultant, slot start, slot end, bookable start."""


def search_statement(criteria: SearchCriteria) -> SearchSelect:
    slot, profile = AvailabilitySlot, ConsultantProfile
    window_start = literal(criteria.window_start, DateTime(timezone=True))
    bookable_start: ColumnElement[datetime] = func.greatest(slot.start_time, window_start)
    statement = (
        select(slot.id, slot.consultant_user_id, slot.start_time, slot.end_time, bookable_start)
        .join(profile, profile.consultant_user_id == slot.consultant_user_id)
        .where(
            # Inline, not a parameter: a generic plan could not otherwise prove the
            # partial index's predicate and would ignore the index.
            slot.status == literal(SlotStatus.AVAILABLE.value, literal_execute=True),
            slot.start_time >= _lowest_start(criteria),
            slot.start_time <= criteria.window_end - criteria.duration,
            slot.end_time >= bookable_start + criteria.duration,
            profile.is_available_for_booking.is_(True),
        )
        .order_by(slot.start_time, slot.id)
        .limit(criteria.limit)
    )
    if criteria.specializations:
        # Checked on each consultant's primary-key lookup; ``@>`` is also what the GIN
        # index serves should the planner start from the profiles instead.
        statement = statement.where(profile.specializations.contains(criteria.specializations))
    if criteria.consultant_id is not None:
        statement = statement.where(slot.consultant_user_id == criteria.consultant_id)
    if criteria.after is not None:
        # With start_time >= the cursor's start already in the range above, this is the
        # keyset condition (start, id) > (cursor start, cursor id). Not written as a row
        # comparison: the planner would estimate it apart from the range, guess far too
        # few rows and prefer sorting a bitmap scan to walking the index.
        after_start, after_id = criteria.after
        statement = statement.where(or_(slot.start_time > after_start, slot.id > after_id))
    return statement


def _lowest_start(criteria: SearchCriteria) -> datetime:
    # Slots are at most MAX_SLOT_LENGTH long, so one that still has ``duration`` left
    # after the window opens starts at most this early: a bounded range of the index.
    lowest = criteria.window_start - (MAX_SLOT_LENGTH - criteria.duration)
    if criteria.after is not None:
        lowest = max(lowest, criteria.after[0])
    return lowest


async def search_bookable_times(
    session: AsyncSession, criteria: SearchCriteria
) -> list[BookableTime]:
    # Plan with the actual values, always. After a few executions PostgreSQL may reuse a
    # generic plan for a prepared statement, which must guess the window's width and
    # how rare a specialization is; for this query it then guesses "a handful of rows"
    # and sorts a consultant-by-consultant scan instead of walking the index. Planning
    # costs a fraction of a millisecond.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    rows = (await session.execute(search_statement(criteria))).all()
    return [
        BookableTime(
            slot_id=slot_id,
            consultant_user_id=consultant_id,
            start_time=start,
            end_time=start + criteria.duration,
            slot_start=slot_start,
            slot_end=slot_end,
        )
        for slot_id, consultant_id, slot_start, slot_end, start in rows
    ]


class Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a statement, with the statement's own parameters."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


async def explain(session: AsyncSession, statement: ClauseElement) -> Any:
    """The planner's plan for ``statement`` as parsed JSON (for tests and benchmarks)."""
    return (await session.execute(Explain(statement))).scalar_one()
