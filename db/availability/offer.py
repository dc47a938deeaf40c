"""Which session starts a free slot offers: the one rule that the availability
search, automatic assignment, the submit and reschedule checks and the hold itself
all apply, so that what the search offers can be booked and what it does not offer
cannot.

A start is offered in a free slot when

- it lies on the start grid (the service type's step, on the consultant's clock),
- it is not sooner than ``not_before`` (now plus the minimum notice, or a request's
  window start) and not later than ``starts_by`` (now plus the booking horizon),
- the whole session fits inside the slot with its buffers before and after it (the
  time the consultant keeps free around a session lies in their published time, like
  the session), and the session ends by ``ends_by`` if there is one,
- (checked by ``db.availability.caps`` with the bookings counted) the consultant's
  day and week on their own clock are not at their caps.

Pure: the callers read the slot and the consultant's zone and hand them in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.start_grid import StartGrid
from core.vocabulary import StartRefusal
from db.availability.recurrence import load_zone

WHOLE_MINUTES = 1
"""The step of requests submitted before starts had a grid: any whole minute."""


Refusal = StartRefusal
"""Why a start is not offered (the vocabulary's, so workflows can name it too)."""


@dataclass(frozen=True, slots=True)
class StartRules:
    """What a start must satisfy besides lying inside a free slot."""

    duration: timedelta
    step_minutes: int
    not_before: datetime
    ends_by: datetime | None = None
    starts_by: datetime | None = None
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)

    def with_buffers(self, before: timedelta, after: timedelta) -> StartRules:
        """These rules for a consultant whose own buffers are ``before``/``after``:
        on each side the larger of theirs and the service type's wins."""
        if before <= self.buffer_before and after <= self.buffer_after:
            return self
        return replace(
            self,
            buffer_before=max(before, self.buffer_before),
            buffer_after=max(after, self.buffer_after),
        )


@dataclass(frozen=True, slots=True)
class FreeSlot:
    """A free stretch of a consultant's time, and the zone of their clock."""

    start: datetime
    end: datetime
    time_zone: str


def consultant_zone(name: str) -> ZoneInfo:
    """The consultant's zone; a name this machine's zone data lacks counts as UTC
    (profiles are validated when written, so only a tzdata downgrade gets here)."""
    return load_zone(name) or ZoneInfo("UTC")


def grid_for(rules: StartRules, time_zone: str) -> StartGrid:
    return StartGrid(rules.step_minutes, consultant_zone(time_zone))


def latest_start(slot: FreeSlot, rules: StartRules) -> datetime:
    """The last moment a session may start in ``slot`` and still end in time."""
    latest = slot.end - rules.buffer_after - rules.duration
    if rules.ends_by is not None:
        latest = min(latest, rules.ends_by - rules.duration)
    if rules.starts_by is not None:
        latest = min(latest, rules.starts_by)
    return latest


def earliest_start(slot: FreeSlot, rules: StartRules) -> datetime:
    """The first moment a session may start in ``slot``."""
    return max(slot.start + rules.buffer_before, rules.not_before)


def offered_starts(
    slot: FreeSlot, rules: StartRules, *, grid: StartGrid | None = None
) -> Iterator[datetime]:
    """Every start ``slot`` offers, earliest first (UTC)."""
    grid = grid or grid_for(rules, slot.time_zone)
    return grid.starts(earliest_start(slot, rules), latest_start(slot, rules))


def first_offered(slot: FreeSlot, rules: StartRules) -> datetime | None:
    """The earliest start ``slot`` offers, if any."""
    return next(offered_starts(slot, rules), None)


def refusal(
    start: datetime, rules: StartRules, *, time_zone: str, slot: FreeSlot | None = None
) -> Refusal | None:
    """Why ``start`` is not offered (None: it is) by a consultant on ``time_zone``'s
    clock, in ``slot``; without a slot only the rules that need none are checked.
    Caps are ``db.availability.caps``' to check."""
    if not grid_for(rules, time_zone).contains(start):
        return Refusal.OFF_GRID
    if start < rules.not_before:
        return Refusal.TOO_SOON
    if rules.starts_by is not None and start > rules.starts_by:
        return Refusal.BEYOND_HORIZON
    end = start + rules.duration
    if rules.ends_by is not None and end > rules.ends_by:
        return Refusal.OUTSIDE_WINDOW
    if slot is None:
        return None
    if start < slot.start or end > slot.end:
        return Refusal.OUTSIDE_SLOT
    if start - rules.buffer_before < slot.start or end + rules.buffer_after > slot.end:
        return Refusal.BUFFER
    return None


def buffered(start: datetime, end: datetime, rules: StartRules) -> tuple[datetime, datetime]:
    """The range a held or booked session takes: the session with its buffers."""
    return start - rules.buffer_before, end + rules.buffer_after
