"""The grid of session starts: wall-clock times a whole number of steps after local
midnight, in one time zone.

"Every 15 minutes" means 09:00, 09:15, 09:30 … on the consultant's own clock, also
on the days the clock jumps: on a spring-forward day the wall times that do not
exist (02:00-02:59 in Europe/Berlin) are simply not on the grid, on a fall-back day
the wall times that happen twice are on it twice (once per offset). A step that does
not divide a day starts again at each local midnight (a 45-minute grid ends the day
at 23:15 and goes on at 00:00).

Pure arithmetic on aware datetimes and ``zoneinfo``: no clock, no I/O, so the search,
the submit checks, assignment and holds all compute the same grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

MINUTES_PER_DAY = 24 * 60
_MICROSECONDS = 1_000_000
_DAY_MICROSECONDS = MINUTES_PER_DAY * 60 * _MICROSECONDS
_JUST_AFTER = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class StartGrid:
    """Starts every ``step_minutes`` from local midnight in ``zone``."""

    step_minutes: int
    zone: tzinfo

    def __post_init__(self) -> None:
        if not 1 <= self.step_minutes <= MINUTES_PER_DAY:
            raise ValueError(f"a start step is 1 to {MINUTES_PER_DAY} minutes")

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=self.step_minutes)

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware) is a start of this grid."""
        local = moment.astimezone(self.zone)
        if local.second or local.microsecond:
            return False
        return (local.hour * 60 + local.minute) % self.step_minutes == 0

    def first_at_or_after(self, moment: datetime) -> datetime:
        """The earliest start at or after ``moment`` (aware), in UTC."""
        return self._first(moment)[0]

    def _first(self, moment: datetime) -> tuple[datetime, timedelta]:
        """The earliest start at or after ``moment``, and the zone's offset then."""
        current = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
        while True:
            offset = _offset(current, self.zone)
            candidate = self._next_at_offset(current, offset)
            if candidate == current or _offset(candidate, self.zone) == offset:
                return candidate, offset
            # The clock changed between the two instants, so no start at the old offset
            # lies before the candidate: go on from the moment of the change.
            current = _offset_change(current, candidate, offset, self.zone)

    def starts(self, first: datetime, last: datetime) -> Iterator[datetime]:
        """Every start in ``[first, last]``, in order (UTC)."""
        start, offset = self._first(first)
        step = self.step
        while start <= last:
            yield start
            # Usually the next start is one step later on the same day at the same
            # offset (one zone lookup); else it is searched for afresh.
            wall = start + offset
            if wall.hour * 60 + wall.minute + self.step_minutes < MINUTES_PER_DAY:
                following = start + step
                if _offset(following, self.zone) == offset:
                    start = following
                    continue
            start, offset = self._first(start + _JUST_AFTER)

    def describe(self) -> str:
        """For people: "every 15 minutes from midnight, Europe/Berlin time"."""
        return f"every {self.step_minutes} minutes from midnight, {self.zone} time"

    def _next_at_offset(self, moment: datetime, offset: timedelta) -> datetime:
        """The first start at or after ``moment`` if the clock kept ``offset``: the
        wall time rounded up to a whole step of its day (or to the next midnight)."""
        wall = moment + offset
        into_day = (
            (wall.hour * 60 + wall.minute) * 60 + wall.second
        ) * _MICROSECONDS + wall.microsecond
        step = self.step_minutes * 60 * _MICROSECONDS
        rounded = min(-(-into_day // step) * step, _DAY_MICROSECONDS)
        return moment + timedelta(microseconds=rounded - into_day)


def _offset(moment: datetime, zone: tzinfo) -> timedelta:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None, "an aware zone always has an offset"
    return offset


def _offset_change(before: datetime, after: datetime, offset: timedelta, zone: tzinfo) -> datetime:
    """The instant in ``(before, after]`` from which ``zone`` no longer has ``offset``
    (``before`` has it, ``after`` does not). Clocks change on whole seconds, so the
    search runs over whole seconds."""
    low = math.floor(before.timestamp())
    high = math.ceil(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(datetime.fromtimestamp(middle, UTC), zone) == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)
