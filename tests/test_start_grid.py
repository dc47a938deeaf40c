"""The start grid on a consultant's wall clock, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.start_grid import StartGrid

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local_times(grid: StartGrid, first: datetime, last: datetime) -> list[str]:
    return [start.astimezone(grid.zone).isoformat() for start in grid.starts(first, last)]


def test_starts_are_whole_steps_from_local_midnight() -> None:
    grid = StartGrid(15, BERLIN)  # UTC+1 in winter

    assert grid.first_at_or_after(utc(2026, 12, 7, 8, 1)) == utc(2026, 12, 7, 8, 15)
    assert grid.first_at_or_after(utc(2026, 12, 7, 8, 15)) == utc(2026, 12, 7, 8, 15)
    assert grid.contains(utc(2026, 12, 7, 8, 45))
    assert not grid.contains(utc(2026, 12, 7, 8, 50))
    assert not grid.contains(utc(2026, 12, 7, 8, 45, 30))


def test_the_grid_follows_the_local_clock_not_utc() -> None:
    """An hour on Kathmandu's clock (UTC+05:45) starts at a quarter past in UTC."""
    grid = StartGrid(60, ZoneInfo("Asia/Kathmandu"))

    assert grid.first_at_or_after(utc(2026, 1, 1, 0, 0)) == utc(2026, 1, 1, 0, 15)
    assert grid.contains(utc(2026, 1, 1, 3, 15))
    assert not grid.contains(utc(2026, 1, 1, 3, 0))


def test_a_step_that_does_not_divide_the_day_starts_again_at_midnight() -> None:
    grid = StartGrid(45, ZoneInfo("UTC"))

    starts = local_times(grid, utc(2026, 12, 7, 22, 0), utc(2026, 12, 8, 1, 0))

    assert starts == [
        "2026-12-07T22:30:00+00:00",
        "2026-12-07T23:15:00+00:00",
        "2026-12-08T00:00:00+00:00",
        "2026-12-08T00:45:00+00:00",
    ]


def test_spring_forward_skips_the_wall_times_that_do_not_exist() -> None:
    """Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00 UTC)."""
    grid = StartGrid(30, BERLIN)

    starts = local_times(grid, utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0))

    assert starts == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_fall_back_offers_the_repeated_wall_times_twice() -> None:
    """New York, 1 November 2026: 02:00 EDT becomes 01:00 EST (06:00 UTC)."""
    grid = StartGrid(30, NEW_YORK)

    starts = local_times(grid, utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 7, 0))

    assert starts == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]


def test_a_step_that_does_not_divide_the_jump_stays_on_the_wall_clock() -> None:
    """A 45-minute grid on the spring-forward night: 01:30 CET is followed by 03:00
    CEST (02:15 does not exist), only half an hour later in UTC."""
    grid = StartGrid(45, BERLIN)

    starts = list(grid.starts(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0)))

    assert [s.astimezone(BERLIN).strftime("%H:%M") for s in starts] == ["01:30", "03:00", "03:45"]
    assert starts[1] - starts[0] == timedelta(minutes=30)


@pytest.mark.parametrize("moment", [utc(2026, 3, 29, 0, 50), utc(2026, 10, 25, 0, 50)])
def test_every_start_found_is_on_the_grid_and_none_is_skipped(moment: datetime) -> None:
    """Against brute force over every minute of the two change days in Berlin."""
    grid = StartGrid(20, BERLIN)
    day_start = moment.replace(hour=0, minute=0) - timedelta(hours=2)
    minutes = [day_start + timedelta(minutes=m) for m in range(26 * 60)]

    expected = [m for m in minutes if grid.contains(m)]

    assert list(grid.starts(minutes[0], minutes[-1])) == expected


def test_describe_names_step_and_alignment() -> None:
    assert StartGrid(15, BERLIN).describe() == (
        "every 15 minutes from midnight, Europe/Berlin time"
    )


@pytest.mark.parametrize("step", [0, 1441])
def test_a_step_outside_a_day_is_refused(step: int) -> None:
    with pytest.raises(ValueError, match="start step"):
        StartGrid(step, BERLIN)
