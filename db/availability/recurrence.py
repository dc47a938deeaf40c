"""Recurring availability: an RRULE expanded on the consultant's wall clock.

"Every Monday 09:00" stays 09:00 local across daylight-saving changes; each
occurrence is then pinned to UTC, the way the slots are stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from dateutil.parser import isoparse
from dateutil.rrule import rrulestr

from core.local_time import zone_named
from db.availability.slots import TimeRange

# Sub-hourly frequencies are refused: a slot lasts at least a minute, and a rule
# whose filters never match would make the expansion walk every second of the horizon.
_ALLOWED_FREQUENCIES = frozenset({"YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"})


class RecurrenceError(ValueError):
    """The rule cannot be expanded as asked; the message is meant for the caller."""


load_zone = zone_named
"""The IANA zone called ``name``, or None when there is no such (valid) zone."""


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
