"""Which session starts a free slot offers: the one rule that the availability
search, automatic assignment, the submit and reschedule checks and the hold itself
all apply, so that what the search offers can be booked and what it does not offer
cannot.

A start is offered in a free slot when

- it lies on the start grid (the service type's step, on the consultant's clock),
- it is not sooner than ``not_before`` (now plus the minimum notice, or a request's
  window start),
- the whole session fits inside the slot, and ends by ``ends_by`` if there is one.

Scheduling policies that narrow the offer (buffers around sessions, caps per day,
notice and horizon per service type) belong here: more fields of ``StartRules`` and
more members of ``Refusal``, read by every caller alike.

Pure: the callers read the slot and the consultant's zone and hand them in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from core.start_grid import StartGrid
from db.availability.recurrence import load_zone

WHOLE_MINUTES = 1
"""The step of requests submitted before starts had a grid: any whole minute."""


class Refusal(StrEnum):
    """Why a start is not offered."""

    OFF_GRID = "off_grid"
    TOO_SOON = "too_soon"
    OUTSIDE_WINDOW = "outside_window"
    OUTSIDE_SLOT = "outside_slot"


@dataclass(frozen=True, slots=True)
class StartRules:
    """What a start must satisfy besides lying inside a free slot."""

    duration: timedelta
    step_minutes: int
    not_before: datetime
    ends_by: datetime | None = None


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
    end = slot.end if rules.ends_by is None else min(slot.end, rules.ends_by)
    return end - rules.duration


def offered_starts(
    slot: FreeSlot, rules: StartRules, *, grid: StartGrid | None = None
) -> Iterator[datetime]:
    """Every start ``slot`` offers, earliest first (UTC)."""
    grid = grid or grid_for(rules, slot.time_zone)
    return grid.starts(max(slot.start, rules.not_before), latest_start(slot, rules))


def first_offered(slot: FreeSlot, rules: StartRules) -> datetime | None:
    """The earliest start ``slot`` offers, if any."""
    return next(offered_starts(slot, rules), None)


def refusal(
    start: datetime, rules: StartRules, *, time_zone: str, slot: FreeSlot | None = None
) -> Refusal | None:
    """Why ``start`` is not offered (None: it is) by a consultant on ``time_zone``'s
    clock, in ``slot``; without a slot only the rules that need none are checked."""
    if not grid_for(rules, time_zone).contains(start):
        return Refusal.OFF_GRID
    if start < rules.not_before:
        return Refusal.TOO_SOON
    if rules.ends_by is not None and start + rules.duration > rules.ends_by:
        return Refusal.OUTSIDE_WINDOW
    if slot is not None and (start < slot.start or start + rules.duration > slot.end):
        return Refusal.OUTSIDE_SLOT
    return None
