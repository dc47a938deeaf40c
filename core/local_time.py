"""Local time is a presentation of UTC: a session's start and end on one party's
wall clock, with the zone's offset at each.

Everything is stored in UTC; responses and event payloads add the learner's and the
consultant's wall time so that a consumer (a notification writing "Tuesday 09:00
(Berlin)") never has to compute it. Pure: ``zoneinfo`` only, no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_ZONE = "UTC"


def zone_named(name: str) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None when there is no such (valid) zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # Malformed keys raise ValueError; directory names ("Europe") and overlong ones OSError.
        return None


def format_offset(offset: timedelta | None) -> str:
    """``+09:00``, ``-04:00``, ``+05:45``, ``+00:00`` (seconds only where a zone has them)."""
    total = int((offset or timedelta(0)).total_seconds())
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{seconds:02d}" if seconds else text


@dataclass(frozen=True, slots=True)
class WallClock:
    """A stretch of time on one zone's clock: ``start`` and ``end`` carry that zone's
    offset at each (they differ when the stretch spans a daylight-saving change)."""

    time_zone: str
    start: datetime
    end: datetime

    @property
    def utc_offset(self) -> str:
        """The zone's offset from UTC at the start."""
        return format_offset(self.start.utcoffset())


def wall_clock(time_zone: str, start: datetime, end: datetime) -> WallClock:
    """``start``/``end`` (aware) on ``time_zone``'s clock.

    Zones are validated when they are written, so only a tzdata downgrade leaves a
    name this machine does not know; it reads as UTC, and says so in ``time_zone``.
    """
    zone = zone_named(time_zone)
    if zone is None:
        time_zone, zone = UTC_ZONE, ZoneInfo(UTC_ZONE)
    return WallClock(time_zone, start.astimezone(zone), end.astimezone(zone))
