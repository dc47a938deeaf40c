"""Bookable times: the starts free slots offer for a session inside a window.

The query is shaped for ``ix_availability_slots_available_start`` (start_time, id)
WHERE status = 'available' INCLUDE (end_time, consultant_user_id): the planner walks
that index in start order over a bounded start-time range, checks the end from the
index tuple, looks up each consultant by primary key and stops at the page size. It
never sorts: a page costs the slots it reads, not the size of the table.

Which starts a slot offers is ``db.availability.offer``'s rule (the grid on the
consultant's clock, the notice, the window). Two searches read the walk:

- ``search_bookable_starts``: every offered start, ordered by (start, slot id). Slots
  come in start order and offer no start before their own start, so the starts of
  the slots read so far are merged, and each is final once the walk has passed it.
- ``search_bookable_times``: the earliest offered start of each slot, in slot order
  (the search before starts had a grid; automatic assignment ranks by it).
"""

from __future__ import annotations

import functools
import heapq
import uuid
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Interval,
    Select,
    String,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from core.start_grid import StartGrid
from core.vocabulary import SlotStatus
from db.availability.busy import BusyTimes, busy_times
from db.availability.caps import Caps, Ledger, ledgers
from db.availability.offer import (
    WHOLE_MINUTES,
    FreeSlot,
    Refusal,
    StartRules,
    consultant_zone,
    grid_for,
    offered_starts,
)
from db.availability.policy import minutes
from db.availability.slots import MAX_SLOT_LENGTH
from db.models import AvailabilitySlot, ConsultantProfile, ConsultantServiceLimit


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    """Where to look. A bookable time starts and ends inside ``[window_start, window_end)``."""

    window_start: datetime
    window_end: datetime
    duration: timedelta
    specializations: tuple[str, ...] = ()
    consultant_id: uuid.UUID | None = None
    after: tuple[datetime, uuid.UUID] | None = None  # keyset of the walk: (slot start, slot id)
    limit: int = 50
    start_interval_minutes: int = WHOLE_MINUTES
    # The service type's policy: its caps per consultant are counted (None: no caps
    # of one type), its buffers kept free and no start later than ``starts_by``.
    service_type_id: uuid.UUID | None = None
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    starts_by: datetime | None = None
    # Busy time from the consultants' calendars is kept free (``db.availability.busy``);
    # with ``stale_calendars_block``, a consultant with a stale calendar offers nothing.
    busy: bool = True
    stale_calendars_block: bool = False

    @property
    def rules(self) -> StartRules:
        return StartRules(
            duration=self.duration,
            step_minutes=self.start_interval_minutes,
            not_before=self.window_start,
            ends_by=self.window_end,
            starts_by=self.starts_by,
            buffer_before=self.buffer_before,
            buffer_after=self.buffer_after,
        )


class BookableTime(NamedTuple):
    """A start a free slot offers, and the slot. (A tuple: a search builds one for
    every start it walks past, and a frozen dataclass costs several times as much to
    build.)"""

    slot_id: uuid.UUID
    consultant_user_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    slot_start: datetime
    slot_end: datetime
    time_zone: str
    """The consultant's (the grid is on their clock)."""


SearchSelect = Select[*tuple[Any, ...]]
"""The columns of ``FreeSlotRow``."""


class FreeSlotRow(NamedTuple):
    slot_id: uuid.UUID
    consultant_id: uuid.UUID
    slot_start: datetime
    slot_end: datetime
    time_zone: str
    buffer_before_minutes: int | None = None
    buffer_after_minutes: int | None = None
    max_sessions_per_day: int | None = None
    max_sessions_per_week: int | None = None
    type_max_sessions_per_day: int | None = None
    type_max_sessions_per_week: int | None = None
    linked_calendars: int = 0

    @property
    def free(self) -> FreeSlot:
        return FreeSlot(self.slot_start, self.slot_end, self.time_zone)

    @property
    def capped(self) -> bool:
        """Whether any cap applies (``caps.any`` without building the caps)."""
        return not (
            self.max_sessions_per_day is None
            and self.max_sessions_per_week is None
            and self.type_max_sessions_per_day is None
            and self.type_max_sessions_per_week is None
        )

    @property
    def caps(self) -> Caps:
        return Caps(
            self.max_sessions_per_day,
            self.max_sessions_per_week,
            self.type_max_sessions_per_day,
            self.type_max_sessions_per_week,
        )

    def rules(self, rules: StartRules) -> StartRules:
        """``rules`` with this consultant's own buffers."""
        return rules.with_buffers(
            minutes(self.buffer_before_minutes), minutes(self.buffer_after_minutes)
        )


class SlotPolicies:
    """The consultants' buffers, caps and busy time for the rows of one search: the
    caps of each capped consultant met are counted once (one query per batch of rows
    that meets new ones; none without caps), their busy time read once per batch of
    rows (one query)."""

    def __init__(
        self,
        criteria: SearchCriteria,
        *,
        count_caps: bool = True,
        consultant_buffers: bool = True,
        read_busy: bool = True,
    ) -> None:
        self._criteria = criteria
        self._rules = criteria.rules
        self._ledgers: dict[uuid.UUID, Ledger] = {}
        self._covered: dict[uuid.UUID, tuple[datetime, datetime]] = {}
        self._count_caps = count_caps
        self._consultant_buffers = consultant_buffers
        self._read_busy = read_busy and criteria.busy
        self._busy = BusyTimes()
        self._busy_read: dict[uuid.UUID, tuple[datetime, datetime]] = {}

    async def load(
        self,
        session: AsyncSession,
        rows: Sequence[FreeSlotRow],
        span: tuple[datetime, datetime] | None = None,
    ) -> None:
        """Read the busy time of the consultants of ``rows`` over the rows' slots, and
        count the caps of the capped ones for starts in ``span`` (default: the whole
        window), unless already done for it."""
        if self._read_busy and rows:
            await self._load_busy(session, rows)
        if not self._count_caps:
            return
        criteria = self._criteria
        start, end = span or (criteria.window_start, criteria.window_end)
        new = {
            row.consultant_id: row
            for row in rows
            if row.capped and not self._covers(row.consultant_id, start, end)
        }
        if not new:
            return
        found = await ledgers(
            session,
            {consultant: row.caps for consultant, row in new.items()},
            {consultant: consultant_zone(row.time_zone) for consultant, row in new.items()},
            start,
            end,
            service_type_id=criteria.service_type_id,
        )
        for consultant, ledger in found.items():
            self._ledgers[consultant] = ledger
            self._covered[consultant] = (start, end)

    async def _load_busy(self, session: AsyncSession, rows: Sequence[FreeSlotRow]) -> None:
        # Only consultants with a linked calendar can be busy. A session lies inside
        # its slot, buffers included: the slots' stretch is all the busy time their
        # starts can meet.
        linked = [row for row in rows if row.linked_calendars]
        if not linked:
            return
        lowest = min(row.slot_start for row in linked)
        highest = max(row.slot_end for row in linked)
        new = {
            row.consultant_id
            for row in linked
            if not _within(self._busy_read.get(row.consultant_id), lowest, highest)
        }
        if not new:
            return
        await busy_times(
            session,
            new,
            lowest,
            highest,
            stale_blocks=self._criteria.stale_calendars_block,
            into=self._busy,
        )
        for consultant in new:
            self._busy_read[consultant] = (lowest, highest)

    def _covers(self, consultant_id: uuid.UUID, start: datetime, end: datetime) -> bool:
        return _within(self._covered.get(consultant_id), start, end)

    def rules(self, row: FreeSlotRow) -> StartRules:
        return row.rules(self._rules) if self._consultant_buffers else self._rules

    def cap_refusal(self, consultant_id: uuid.UUID, start: datetime) -> Refusal | None:
        ledger = self._ledgers.get(consultant_id)
        return None if ledger is None else ledger.refusal(start)

    def starts(self, row: FreeSlotRow, grid: StartGrid | None = None) -> Iterator[datetime]:
        """The starts ``row`` offers that its consultant's caps and busy time admit."""
        rules = self.rules(row)
        starts = offered_starts(row.free, rules, grid=grid)
        if self._read_busy:
            starts = self._busy.free_starts(row.consultant_id, starts, rules)
        ledger = self._ledgers.get(row.consultant_id)
        return starts if ledger is None else ledger.admitted(starts)


def _within(read: tuple[datetime, datetime] | None, start: datetime, end: datetime) -> bool:
    return read is not None and read[0] <= start and end <= read[1]


class SearchQuery(NamedTuple):
    """``search_statement``'s statement (one per shape of criteria, built once) and the
    values of its parameters."""

    statement: SearchSelect
    params: dict[str, Any]

    def where(self, *clauses: ColumnElement[bool]) -> SearchQuery:
        return SearchQuery(self.statement.where(*clauses), self.params)

    async def rows(self, session: AsyncSession) -> list[FreeSlotRow]:
        # On the session's connection, not through the ORM: the rows are plain
        # columns, and the ORM's result handling cost a tenth of a search's CPU.
        connection = await session.connection()
        return list(map(FreeSlotRow._make, await connection.execute(*self)))


def search_statement(criteria: SearchCriteria) -> SearchQuery:
    """Free slots that could offer a session in the window, in (start, id) order; a
    superset of those that do (the grid is applied to the rows).

    The statement depends only on which criteria are given (``_Shape``), so it is
    built once per shape; building and keying a statement of this size costs a few
    tenths of a millisecond, a good part of a search that reads one page."""
    shape = _Shape(
        typed=criteria.service_type_id is not None,
        buffered_before=bool(criteria.buffer_before),
        specialized=bool(criteria.specializations),
        one_consultant=criteria.consultant_id is not None,
        keyset=criteria.after is not None,
    )
    params: dict[str, Any] = {
        "window_start": criteria.window_start,
        "lowest_start": _lowest_start(criteria),
        "latest_start": criteria.window_end - criteria.duration,
        "bookable_length": criteria.duration + criteria.buffer_after,
        "limit": criteria.limit,
    }
    if shape.typed:
        params["service_type_id"] = criteria.service_type_id
    if shape.buffered_before:
        params["buffer_before"] = criteria.buffer_before
    if shape.specialized:
        params["specializations"] = list(criteria.specializations)
    if shape.one_consultant:
        params["consultant_id"] = criteria.consultant_id
    if criteria.after is not None:
        params["after_start"], params["after_id"] = criteria.after
    return SearchQuery(_statement_of(shape), params)


@dataclass(frozen=True, slots=True)
class _Shape:
    typed: bool
    buffered_before: bool
    specialized: bool
    one_consultant: bool
    keyset: bool


@functools.cache
def _statement_of(shape: _Shape) -> SearchSelect:
    slot, profile = AvailabilitySlot, ConsultantProfile
    window_start = bindparam("window_start", type_=DateTime(timezone=True))
    # The type's buffers lie in the slot too (a consultant's own can only widen them),
    # so a slot too short for the session and its buffers is left out here already.
    slot_start: ColumnElement[datetime] = slot.start_time.expression
    if shape.buffered_before:
        slot_start = slot.start_time + bindparam("buffer_before", type_=Interval())
    bookable_start: ColumnElement[datetime] = func.greatest(slot_start, window_start)
    limit = ConsultantServiceLimit
    no_cap = literal(None, Integer)
    type_caps = (
        (limit.max_sessions_per_day, limit.max_sessions_per_week)
        if shape.typed
        else (no_cap, no_cap)
    )
    statement = (
        select(
            slot.id,
            slot.consultant_user_id,
            slot.start_time,
            slot.end_time,
            profile.time_zone,
            profile.buffer_before_minutes,
            profile.buffer_after_minutes,
            profile.max_sessions_per_day,
            profile.max_sessions_per_week,
            *type_caps,
            profile.linked_calendars,
        )
        .join(profile, profile.consultant_user_id == slot.consultant_user_id)
        .where(
            # Inline, not a parameter: a generic plan could not otherwise prove the
            # partial index's predicate and would ignore the index.
            slot.status == literal(SlotStatus.AVAILABLE.value, literal_execute=True),
            slot.start_time >= bindparam("lowest_start", type_=DateTime(timezone=True)),
            slot.start_time <= bindparam("latest_start", type_=DateTime(timezone=True)),
            slot.end_time >= bookable_start + bindparam("bookable_length", type_=Interval()),
            profile.is_available_for_booking.is_(True),
        )
        .order_by(slot.start_time, slot.id)
        .limit(bindparam("limit", type_=Integer()))
    )
    if shape.typed:
        statement = statement.outerjoin(
            limit,
            and_(
                limit.consultant_user_id == slot.consultant_user_id,
                limit.consultation_service_type_id
                == bindparam("service_type_id", type_=PG_UUID(as_uuid=True)),
            ),
        )
    if shape.specialized:
        # Checked on each consultant's primary-key lookup; ``@>`` is also what the GIN
        # index serves should the planner start from the profiles instead.
        statement = statement.where(
            profile.specializations.contains(bindparam("specializations", type_=ARRAY(String(100))))
        )
    if shape.one_consultant:
        statement = statement.where(
            slot.consultant_user_id == bindparam("consultant_id", type_=PG_UUID(as_uuid=True))
        )
    if shape.keyset:
        # With start_time >= the cursor's start already in the range above, this is the
        # keyset condition (start, id) > (cursor start, cursor id). Not written as a row
        # comparison: the planner would estimate it apart from the range, guess far too
        # few rows and prefer sorting a bitmap scan to walking the index.
        statement = statement.where(
            or_(
                slot.start_time > bindparam("after_start", type_=DateTime(timezone=True)),
                slot.id > bindparam("after_id", type_=PG_UUID(as_uuid=True)),
            )
        )
    return statement


def _lowest_start(criteria: SearchCriteria) -> datetime:
    # Slots are at most MAX_SLOT_LENGTH long, so one that still has ``duration`` left
    # after the window opens starts at most this early: a bounded range of the index.
    lowest = criteria.window_start - (MAX_SLOT_LENGTH - criteria.duration)
    if criteria.after is not None:
        lowest = max(lowest, criteria.after[0])
    return lowest


FIRST_BATCH = 128
"""Free slots read by the first query of a search; each further query reads
``BATCH_GROWTH`` times as many (up to ``MAX_BATCH``), so that a search that must read
many slots needs few round trips."""
BATCH_GROWTH = 2
MAX_BATCH = 4096
STARTS_FIRST_BATCH_PAGES = (2, 4)
"""Pages of slots the every-start search reads first, with and without a filter by
specialization or consultant: unfiltered, a busy hour has hundreds of slots running
across the window's start, and all of them must be read before its first start is
final; a filter leaves few of them, and reading far ahead would walk the index for
nothing."""


async def _plan_with_actual_values(session: AsyncSession) -> None:
    # After a few executions PostgreSQL may reuse a generic plan for a prepared
    # statement, which must guess the window's width and how rare a specialization
    # is; for this query it then guesses "a handful of rows" and sorts a
    # consultant-by-consultant scan instead of walking the index. Planning costs a
    # fraction of a millisecond.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def free_slots(
    session: AsyncSession,
    criteria: SearchCriteria,
    policies: SlotPolicies | None = None,
    *,
    first_batch: int = FIRST_BATCH,
) -> AsyncGenerator[FreeSlotRow]:
    """The rows of ``search_statement`` one by one, read in batches of growing size
    (the caller stops reading when it has what it needs); ``policies``, if given, has
    counted the caps of each batch's consultants before its rows are handed out."""
    batch = max(first_batch, 1)
    after = criteria.after
    while True:
        rows = await search_statement(replace(criteria, after=after, limit=batch)).rows(session)
        if policies is not None:
            await policies.load(session, rows)
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after = (rows[-1].slot_start, rows[-1].slot_id)
        batch = min(batch * BATCH_GROWTH, MAX_BATCH)


async def search_bookable_times(
    session: AsyncSession, criteria: SearchCriteria
) -> list[BookableTime]:
    """The earliest start each free slot offers, in slot order (start, id); at most
    ``criteria.limit``."""
    await _plan_with_actual_values(session)
    grids = _Grids(criteria.rules)
    policies = SlotPolicies(criteria)
    found: list[BookableTime] = []
    async for row in free_slots(session, criteria, policies, first_batch=criteria.limit):
        start = next(policies.starts(row, grids[row.time_zone]), None)
        if start is not None:
            found.append(_bookable(row, start, criteria.duration))
            if len(found) >= criteria.limit:
                break
    return found


async def search_bookable_starts(
    session: AsyncSession,
    criteria: SearchCriteria,
    *,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[BookableTime]:
    """Every start the free slots offer, ordered by (start, slot id), after ``after``
    (the last start and slot of the page before); at most ``criteria.limit``.

    The walk (``_walk_starts``) applies every rule of a slot itself (grid, notice,
    window, buffers, horizon) and its consultant's busy time. Caps depend on the
    consultant's other bookings: they are counted as the starts come, a chunk at a
    time, for the consultants of those starts only (none without caps), and a start
    they refuse is dropped. After a chunk the next one asks for twice the starts
    still missing, so a page on capped days needs few counting queries and never
    walks the index twice.
    """
    await _plan_with_actual_values(session)
    policies = SlotPolicies(criteria, read_busy=False)  # the walk keeps busy time free
    found: list[BookableTime] = []
    chunk: list[tuple[BookableTime, FreeSlotRow]] = []
    wanted = criteria.limit

    async def take(chunk: list[tuple[BookableTime, FreeSlotRow]]) -> bool:
        if not chunk:
            return False
        span = (chunk[0][0].start_time, chunk[-1][0].start_time)
        await policies.load(session, [row for _, row in chunk], span)
        for start, row in chunk:
            if policies.cap_refusal(row.consultant_id, start.start_time) is None:
                found.append(start)
                if len(found) >= criteria.limit:
                    return True
        return False

    walk = _walk_starts(session, criteria, after=after)
    capped_seen = False
    try:
        async for item in walk:
            chunk.append(item)
            if len(chunk) < wanted:
                continue
            if not capped_seen and any(row.capped for _, row in chunk):
                # Caps are in play: some starts will be refused, so count a larger
                # first chunk at once rather than a second one later.
                capped_seen = True
                wanted = criteria.limit * 4 // 3 + CAPPED_SLACK
                if len(chunk) < wanted:
                    continue
            if await take(chunk):
                return found
            chunk = []
            wanted = 2 * (criteria.limit - len(found)) + CAPPED_SLACK
        await take(chunk)
        return found
    finally:
        await walk.aclose()


Walked = tuple[BookableTime, FreeSlotRow]

CAPPED_SLACK = 8
"""Extra starts a chunk asks for beyond twice the missing ones, so that a few more
starts on capped days do not need yet another counting query."""


_Pending = tuple[datetime, uuid.UUID, Iterator[datetime] | None, FreeSlotRow]
"""A slot in the walk's queue: (start, slot id, its later starts, slot); see
``_walk_starts``."""


async def _walk_starts(
    session: AsyncSession,
    criteria: SearchCriteria,
    *,
    after: tuple[datetime, uuid.UUID] | None,
) -> AsyncGenerator[tuple[BookableTime, FreeSlotRow]]:
    """Every start the free slots offer by the rules of the slots and their
    consultants' busy time (no caps),
    after ``after``, in (start, slot id) order, each as soon as it is final; the
    caller stops when it has enough.

    A slot offers no start before its own start, and slots are read in (start, id)
    order; so once the walk has read a slot ``(s, id)``, every start ordered at or
    before ``(s, id)`` that any slot will ever offer is among the slots read: those
    are final. A slot is at most a day long, so a page starts reading at most a day
    before its first start (the index range of ``search_statement``).
    """
    if after is not None:
        criteria = replace(criteria, window_start=max(criteria.window_start, after[0]))
    criteria = replace(criteria, after=None)
    grids = _Grids(criteria.rules)
    uncapped = SlotPolicies(criteria, count_caps=False)
    # (start, slot id, its later starts, slot). A slot read is queued at the earliest
    # its first start can be (its own start or the window's) with no starts computed
    # yet (None); they are computed when it reaches the head of the queue, so the many
    # slots read only to be sure nothing comes before the page's starts cost little.
    pending: list[_Pending] = []

    def settle(
        position: tuple[datetime, uuid.UUID] | None,
    ) -> Iterator[tuple[BookableTime, FreeSlotRow]]:
        """The pending starts up to ``position`` (all of them at the end of the walk),
        in order."""
        while pending and (position is None or _not_after(pending[0], position)):
            start, slot_id, later, row = heapq.heappop(pending)
            if later is None:  # not yet computed: queue its first start instead
                later = uncapped.starts(row, grids[row.time_zone])
                first = next(later, None)
                if first is not None:
                    heapq.heappush(pending, (first, slot_id, later, row))
                continue
            if after is None or (start, slot_id) > after:
                yield _bookable(row, start, criteria.duration), row
            following = next(later, None)
            if following is not None:
                heapq.heappush(pending, (following, slot_id, later, row))

    window_start = criteria.window_start
    filtered, unfiltered = STARTS_FIRST_BATCH_PAGES
    pages = filtered if criteria.specializations or criteria.consultant_id else unfiltered
    rows = free_slots(session, criteria, uncapped, first_batch=pages * criteria.limit)
    try:
        async for row in rows:
            earliest = row.slot_start if row.slot_start > window_start else window_start
            heapq.heappush(pending, (earliest, row.slot_id, None, row))
            for item in settle((row.slot_start, row.slot_id)):
                yield item
        for item in settle(None):
            yield item
    finally:
        await rows.aclose()


def _not_after(entry: _Pending, position: tuple[datetime, uuid.UUID]) -> bool:
    """``entry[:2] <= position``, without building the slice (the walk asks this for
    every slot it reads)."""
    return entry[0] < position[0] or (entry[0] == position[0] and entry[1] <= position[1])


class _Grids(dict[str, StartGrid]):
    """The start grid of each consultant zone met in one search, built once."""

    def __init__(self, rules: StartRules) -> None:
        super().__init__()
        self._rules = rules

    def __missing__(self, time_zone: str) -> StartGrid:
        grid = self[time_zone] = grid_for(self._rules, time_zone)
        return grid


def _bookable(row: FreeSlotRow, start: datetime, duration: timedelta) -> BookableTime:
    return BookableTime(
        slot_id=row.slot_id,
        consultant_user_id=row.consultant_id,
        start_time=start,
        end_time=start + duration,
        slot_start=row.slot_start,
        slot_end=row.slot_end,
        time_zone=row.time_zone,
    )


class Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON)`` of a statement, with the statement's own parameters."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


async def explain(session: AsyncSession, query: SearchQuery) -> Any:
    """The planner's plan for ``query`` as parsed JSON (for tests and benchmarks)."""
    return (await session.execute(Explain(query.statement), query.params)).scalar_one()
