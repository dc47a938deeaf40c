"""A session's times on each party's wall clock, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.local_time import format_offset, wall_clock, zone_named


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "text"),
    [
        (timedelta(hours=9), "+09:00"),
        (timedelta(hours=-4), "-04:00"),
        (timedelta(hours=-3, minutes=-30), "-03:30"),
        (timedelta(hours=5, minutes=45), "+05:45"),
        (timedelta(0), "+00:00"),
        (None, "+00:00"),
        (timedelta(minutes=53, seconds=28), "+00:53:28"),
    ],
)
def test_offsets_are_written_as_hours_and_minutes(offset: timedelta | None, text: str) -> None:
    assert format_offset(offset) == text


@pytest.mark.parametrize(
    ("start", "new_york", "offset", "tokyo"),
    [
        # America/New_York falls back on 2026-11-01 at 02:00 EDT.
        (utc(2026, 10, 30, 13), "2026-10-30T09:00:00-04:00", "-04:00", "2026-10-30T22:00:00+09:00"),
        (utc(2026, 11, 2, 14), "2026-11-02T09:00:00-05:00", "-05:00", "2026-11-02T23:00:00+09:00"),
        # and springs forward on 2027-03-14 at 02:00 EST.
        (utc(2027, 3, 12, 14), "2027-03-12T09:00:00-05:00", "-05:00", "2027-03-12T23:00:00+09:00"),
        (utc(2027, 3, 15, 13), "2027-03-15T09:00:00-04:00", "-04:00", "2027-03-15T22:00:00+09:00"),
    ],
)
def test_the_same_utc_times_on_two_clocks(
    start: datetime, new_york: str, offset: str, tokyo: str
) -> None:
    end = start + timedelta(minutes=45)

    consultant = wall_clock("America/New_York", start, end)
    learner = wall_clock("Asia/Tokyo", start, end)

    assert (consultant.start.isoformat(), consultant.utc_offset) == (new_york, offset)
    assert consultant.end - consultant.start == timedelta(minutes=45)
    assert (learner.start.isoformat(), learner.utc_offset) == (tokyo, "+09:00")  # no DST there
    assert learner.start == consultant.start == start  # one instant, two clocks


def test_a_session_across_the_change_carries_each_offset() -> None:
    # 01:30 EDT to 01:30 EST: the wall clock reads 01:30 twice, an hour apart.
    start = utc(2026, 11, 1, 5, 30)
    wall = wall_clock("America/New_York", start, start + timedelta(hours=1))

    assert wall.start.isoformat() == "2026-11-01T01:30:00-04:00"
    assert wall.end.isoformat() == "2026-11-01T01:30:00-05:00"
    assert wall.utc_offset == "-04:00"  # the offset at the start


def test_a_zone_this_machine_does_not_know_reads_as_utc() -> None:
    start = utc(2026, 12, 7, 9)
    wall = wall_clock("Mars/Olympus_Mons", start, start + timedelta(hours=1))

    assert (wall.time_zone, wall.start.isoformat(), wall.utc_offset) == (
        "UTC",
        "2026-12-07T09:00:00+00:00",
        "+00:00",
    )


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe", "../etc/passwd", "", "x" * 300])
def test_only_iana_zones_are_known(name: str) -> None:
    assert zone_named(name) is None


def test_iana_zones_are_known() -> None:
    assert zone_named("Asia/Tokyo") is not None
    assert zone_named("UTC") is not None
