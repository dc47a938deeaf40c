"""Recurrence expansion: wall-clock times across DST, bounds and limits (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from db.availability.recurrence import (
    Recurrence,
    RecurrenceError,
    expand_recurrence,
    load_zone,
    local_to_utc,
)
from db.availability.slots import TimeRange, overlapping_each_other

BERLIN = ZoneInfo("Europe/Berlin")
HORIZON = timedelta(days=366)


def expand(
    rule: str,
    start_local: datetime,
    *,
    minutes: int = 60,
    zone: ZoneInfo = BERLIN,
    count: int | None = None,
    until: date | None = None,
    max_occurrences: int = 1000,
    horizon: timedelta = HORIZON,
) -> list[TimeRange]:
    recurrence = Recurrence(
        rule=rule,
        start_local=start_local,
        duration=timedelta(minutes=minutes),
        zone=zone,
        count=count,
        until=until,
    )
    return expand_recurrence(recurrence, horizon=horizon, max_occurrences=max_occurrences)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_weekly_0900_berlin_stays_0900_local_across_the_october_dst_change() -> None:
    slots = expand(
        "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
        datetime(2026, 10, 19, 9, 0),
        count=3,
    )
    assert [s.start for s in slots] == [
        utc(2026, 10, 19, 7),  # CEST, UTC+2
        utc(2026, 10, 26, 8),  # CET, UTC+1 (clocks went back on 25 October)
        utc(2026, 11, 2, 8),
    ]
    assert all(s.start.astimezone(BERLIN).hour == 9 for s in slots)
    assert all(s.end - s.start == timedelta(hours=1) for s in slots)


def test_spring_forward_gap_shifts_forward_by_the_gap() -> None:
    # 29 March 2026, Berlin jumps from 02:00 to 03:00: 02:30 does not exist.
    slots = expand("FREQ=DAILY", datetime(2026, 3, 28, 2, 30), count=3, minutes=30)
    assert [s.start for s in slots] == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 30),  # read as 02:30 CET = 03:30 CEST
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]
    assert slots[1].start.astimezone(BERLIN).strftime("%H:%M") == "03:30"


def test_ambiguous_fall_back_time_means_the_first_one() -> None:
    # 25 October 2026, 02:30 happens twice in Berlin; fold=0 is the CEST one.
    assert local_to_utc(datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)


def test_the_rule_may_carry_its_own_count_or_until() -> None:
    by_count = expand("RRULE:FREQ=DAILY;COUNT=2", datetime(2026, 12, 1, 10))
    assert len(by_count) == 2
    by_until = expand("FREQ=DAILY;UNTIL=20261203T235959Z", datetime(2026, 12, 1, 10))
    assert [s.start.day for s in by_until] == [1, 2, 3]
    by_date = expand("freq=daily;until=20261202", datetime(2026, 12, 1, 10))
    assert [s.start.day for s in by_date] == [1, 2]


def test_until_as_a_local_day_includes_that_whole_day() -> None:
    slots = expand("FREQ=DAILY;BYHOUR=18", datetime(2026, 12, 1, 18), until=date(2026, 12, 3))
    assert [s.start for s in slots] == [utc(2026, 12, d, 17) for d in (1, 2, 3)]


def test_until_as_an_aware_date_time_is_read_on_the_local_clock() -> None:
    # 17:00Z is 18:00 in Berlin: the 18:00 occurrence on the 2nd is the last.
    slots = expand(
        "FREQ=DAILY", datetime(2026, 12, 1, 18), until=datetime(2026, 12, 2, 17, tzinfo=UTC)
    )
    assert len(slots) == 2


@pytest.mark.parametrize(
    ("rule", "count", "until", "message"),
    [
        ("FREQ=DAILY", None, None, "open-ended"),
        ("FREQ=DAILY;COUNT=2", 2, None, "once"),
        ("FREQ=DAILY", 2, date(2026, 12, 31), "once"),
        ("FREQ=MINUTELY", 5, None, "FREQ"),
        ("BYDAY=MO", 5, None, "FREQ"),
        ("FREQ=DAILY;BYDAY=XX", 5, None, "not a valid RRULE"),
        ("FREQ=DAILY;FREQ=WEEKLY", 5, None, "twice"),
        ("FREQ=DAILY;COUNT=0", None, None, "COUNT"),
        ("FREQ=DAILY;UNTIL=tomorrow", None, None, "UNTIL"),
        ("DTSTART:20261201T100000\nRRULE:FREQ=DAILY", 5, None, "DTSTART"),
        ("FREQ=DAILY;INTERVAL", 5, None, "Malformed"),
        ("FREQ=DAILY", None, date(2026, 11, 1), "no occurrences"),
    ],
)
def test_malformed_or_unbounded_rules_are_refused(
    rule: str, count: int | None, until: date | None, message: str
) -> None:
    with pytest.raises(RecurrenceError, match=message):
        expand(rule, datetime(2026, 12, 1, 10), count=count, until=until)


def test_until_beyond_the_horizon_is_refused() -> None:
    with pytest.raises(RecurrenceError, match="horizon"):
        expand("FREQ=WEEKLY", datetime(2026, 12, 1, 10), until=date(2028, 1, 1))


def test_count_reaching_beyond_the_horizon_is_refused() -> None:
    with pytest.raises(RecurrenceError, match="horizon"):
        expand("FREQ=YEARLY", datetime(2026, 12, 1, 10), count=3)


def test_a_rule_whose_filters_never_match_ends_at_the_horizon() -> None:
    # 30 February never comes; the expansion must stop, not walk on for centuries.
    with pytest.raises(RecurrenceError, match="horizon"):
        expand("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", datetime(2026, 12, 1, 10), count=1)


def test_more_occurrences_than_allowed_are_refused() -> None:
    with pytest.raises(RecurrenceError, match="more than 10"):
        expand(
            "FREQ=DAILY", datetime(2026, 12, 1, 10), until=date(2026, 12, 31), max_occurrences=10
        )
    with pytest.raises(RecurrenceError, match="At most 10"):
        expand("FREQ=DAILY", datetime(2026, 12, 1, 10), count=11, max_occurrences=10)


def test_dates_at_the_end_of_the_calendar_are_refused_cleanly() -> None:
    with pytest.raises(RecurrenceError):
        expand("FREQ=DAILY", datetime(9999, 12, 30, 10), count=1)


def test_time_zone_names_are_checked() -> None:
    assert load_zone("Europe/Berlin") == BERLIN
    for name in ("Mars/Olympus", "../etc/passwd", "Europe", "", "a" * 300, "Europe/Berlin\x00"):
        assert load_zone(name) is None


def test_overlaps_within_a_request_are_found() -> None:
    a = TimeRange(utc(2026, 12, 1, 9), utc(2026, 12, 1, 12))
    b = TimeRange(utc(2026, 12, 1, 10), utc(2026, 12, 1, 11))
    c = TimeRange(utc(2026, 12, 1, 12), utc(2026, 12, 1, 13))  # touches a: no overlap
    d = TimeRange(utc(2026, 12, 1, 11), utc(2026, 12, 1, 12, 30))
    assert overlapping_each_other([c, b, a]) == [a, b]
    assert overlapping_each_other([a, c]) == []
    assert overlapping_each_other([a, b, c, d]) == [a, b, d, c]
