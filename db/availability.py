"""Availability commands and queries.

- Recurrence: an RRULE is expanded on the consultant's wall clock, so "every Monday
  09:00" stays 09:00 local across daylight-saving changes, then stored in UTC.
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
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.parser import isoparse
from dateutil.rrule import rrulestr
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

# Sub-hourly frequencies are refused: a slot lasts at least a minute, and a rule
# whose filters never match would make the expansion walk every second of the horizon.
_ALLOWED_FREQUENCIES = frozenset({"YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"})
_DEADLOCK_RETRIES = 3


class TimeRange(NamedTuple):
    """A half-open ``[start, end)`` stretch of time, both ends timezone-aware."""

    start: datetime
    end: datetime


class RecurrenceError(ValueError):
    """The rule cannot be expanded as asked; the message is meant for the caller."""


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


# --- Time zones and recurrence ------------------------------------------------------


def load_zone(name: str) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None when there is no such (valid) zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # Malformed keys raise ValueError; directory names and overlong ones OSError.
        return None


def local_to_utc(wall_clock: datetime, zone: ZoneInfo) -> datetime:
    """Pin a naive wall-clock time in ``zone`` to UTC, the way RFC 5545 (3.3.5) does.

    ``fold=0`` picks the first of two ambiguous times (the fall-back hour happens
    twice: the earlier, daylight-saving one is meant) and reads a nonexistent time (in
    the spring-forward gap) with the offset before the gap, i.e. shifts it forward by
    the gap's length: 02:30 on a day that jumps from 02:00 to 03:00 becomes 03:30.
    """
    return wall_clock.replace(tzinfo=zone, fold=0).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A recurring rule as the caller gave it.

    ``rule`` is an RRULE value without DTSTART (``start_local`` anchors it: the first
    possible occurrence, and the default hour, minute and weekday). The rule is bounded
    by exactly one of ``COUNT``/``UNTIL`` in the rule itself, ``count`` or ``until``.
    """

    rule: str
    start_local: datetime
    duration: timedelta
    zone: ZoneInfo
    count: int | None = None
    until: date | None = None  # a local day (inclusive) or a date-time (naive = local)


def expand_recurrence(
    recurrence: Recurrence, *, horizon: timedelta, max_occurrences: int
) -> list[TimeRange]:
    """The rule's occurrences as UTC ranges; ``RecurrenceError`` when it is unbounded,
    reaches past ``start_local + horizon`` or yields more than ``max_occurrences``."""
    if recurrence.start_local.tzinfo is not None:
        raise RecurrenceError("start_local is a wall-clock time without an offset.")
    parts = _rule_parts(recurrence.rule)
    count, until = _bound(parts, recurrence)
    horizon_end = _horizon_end(recurrence.start_local, horizon)
    if until is not None and until > horizon_end:
        raise RecurrenceError(
            f"The rule runs until {until.isoformat()}, beyond the horizon of "
            f"{horizon.days} days from start_local ({horizon_end.isoformat()})."
        )
    if count is not None and count > max_occurrences:
        raise RecurrenceError(f"At most {max_occurrences} slots can be created at once.")
    rule = _build_rule(parts, recurrence.start_local, until or horizon_end)
    wanted = count if count is not None else max_occurrences + 1
    occurrences = _take(rule, wanted)
    if count is not None and len(occurrences) < count:
        raise RecurrenceError(
            f"The rule does not produce {count} occurrences within the horizon of "
            f"{horizon.days} days from start_local."
        )
    if len(occurrences) > max_occurrences:
        raise RecurrenceError(
            f"The rule produces more than {max_occurrences} slots; shorten it or split it."
        )
    if not occurrences:
        raise RecurrenceError("The rule produces no occurrences.")
    try:
        return [_occurrence(wall, recurrence) for wall in occurrences]
    except OverflowError as exc:  # near the end of the calendar (year 9999)
        raise RecurrenceError("The rule reaches beyond the supported range of dates.") from exc


def _rule_parts(text: str) -> dict[str, str]:
    """``{"FREQ": "WEEKLY", ...}`` from ``[RRULE:]FREQ=WEEKLY;...``, checked for shape."""
    value = text.strip()
    if value[:6].upper() == "RRULE:":
        value = value[6:]
    if not value or any(char in value for char in ":\r\n\t "):
        raise RecurrenceError(
            "rrule must be one RRULE value such as FREQ=WEEKLY;BYDAY=MO "
            "(no DTSTART: start_local takes its place)."
        )
    parts: dict[str, str] = {}
    for pair in value.split(";"):
        name, sep, item = pair.partition("=")
        name = name.upper()
        if not sep or not name or not item:
            raise RecurrenceError(f"Malformed rule part {pair!r}; expected NAME=VALUE.")
        if name in parts:
            raise RecurrenceError(f"The rule part {name} appears twice.")
        parts[name] = item.upper()
    if parts.get("FREQ") not in _ALLOWED_FREQUENCIES:
        allowed = ", ".join(sorted(_ALLOWED_FREQUENCIES))
        raise RecurrenceError(f"The rule needs FREQ set to one of {allowed}.")
    return parts


def _bound(parts: dict[str, str], recurrence: Recurrence) -> tuple[int | None, datetime | None]:
    """Take COUNT/UNTIL out of ``parts`` and merge them with the body's fields."""
    rule_count, rule_until = parts.pop("COUNT", None), parts.pop("UNTIL", None)
    bounds = (rule_count, rule_until, recurrence.count, recurrence.until)
    given = [bound for bound in bounds if bound is not None]
    if len(given) > 1:
        raise RecurrenceError("Bound the rule once: COUNT or UNTIL, in the rule or as a field.")
    if not given:
        raise RecurrenceError("An open-ended rule needs a bound: count or until.")
    if rule_count is not None:
        return _parse_count(rule_count), None
    if rule_until is not None:
        return None, _wall_clock_until(_parse_rule_until(rule_until), recurrence.zone)
    if recurrence.until is not None:
        return None, _wall_clock_until(recurrence.until, recurrence.zone)
    return recurrence.count, None


def _parse_count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise RecurrenceError(f"COUNT must be a positive integer, not {value!r}.")
    return int(value)


def _parse_rule_until(value: str) -> date:
    try:
        if len(value) == 8 and value.isdigit():  # a DATE value: YYYYMMDD
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        return isoparse(value)
    except ValueError as exc:
        raise RecurrenceError(f"UNTIL {value!r} is not a date or date-time.") from exc


def _wall_clock_until(until: date, zone: ZoneInfo) -> datetime:
    """The last wall-clock moment an occurrence may start at."""
    if not isinstance(until, datetime):
        return datetime.combine(until, time(23, 59, 59))  # the whole local day counts
    if until.tzinfo is None:
        return until
    return until.astimezone(zone).replace(tzinfo=None)


def _horizon_end(start_local: datetime, horizon: timedelta) -> datetime:
    try:
        return start_local + horizon
    except OverflowError as exc:
        raise RecurrenceError("start_local is too far in the future.") from exc


def _build_rule(parts: dict[str, str], dtstart: datetime, until: datetime) -> Iterable[datetime]:
    # Always bounded by UNTIL, even for a COUNT rule (whose count is taken by the
    # caller): a rule whose filters rarely match then cannot walk on for centuries.
    text = ";".join(f"{name}={value}" for name, value in parts.items())
    text += f";UNTIL={until:%Y%m%dT%H%M%S}"
    try:
        return rrulestr(text, dtstart=dtstart)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(f"The rule is not a valid RRULE: {exc}") from exc


def _take(rule: Iterable[datetime], limit: int) -> list[datetime]:
    try:
        return list(islice(rule, limit))
    except (ValueError, OverflowError) as exc:
        raise RecurrenceError(f"The rule cannot be expanded: {exc}") from exc


def _occurrence(wall_clock: datetime, recurrence: Recurrence) -> TimeRange:
    # The duration is elapsed time: a slot across a DST change keeps its length.
    start = local_to_utc(wall_clock, recurrence.zone)
    return TimeRange(start, start + recurrence.duration)


# --- Commands -----------------------------------------------------------------------


async def create_slots(
    session: AsyncSession, consultant_id: uuid.UUID, ranges: Sequence[TimeRange]
) -> list[AvailabilitySlot]:
    """Insert all ``ranges`` as available slots in one transaction, and commit.

    Raises ``SlotOverlapError`` (nothing inserted) when any of them overlaps an existing
    slot or another one of them, ``ConsultantNotFoundError`` when the profile is gone.
    """
    # Start order: concurrent batches then lock in the same order, so they seldom
    # deadlock; when they do, PostgreSQL aborts one and a retry waits for the other.
    rows = [
        {"consultant_user_id": consultant_id, "start_time": r.start, "end_time": r.end}
        for r in sorted(ranges)
    ]
    for attempt in range(_DEADLOCK_RETRIES + 1):
        try:
            result = await session.scalars(
                insert(AvailabilitySlot).returning(AvailabilitySlot), rows
            )
            slots = sorted(result.all(), key=lambda slot: slot.start_time)
            await session.commit()
            return slots
        except DBAPIError as exc:
            await session.rollback()
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
    """Set a free slot ``available`` or ``unavailable``, and commit."""
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
        await session.rollback()
        raise await _why_not_free(session, consultant_id, slot_id)
    await session.commit()
    return slot


async def delete_free_slot(
    session: AsyncSession, consultant_id: uuid.UUID, slot_id: uuid.UUID
) -> None:
    """Delete a free slot, and commit."""
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
        await session.rollback()
        raise await _why_not_free(session, consultant_id, slot_id)
    await session.commit()


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
