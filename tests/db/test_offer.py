"""Which starts a free slot offers, and why a start is refused (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db.availability.offer import (
    FreeSlot,
    Refusal,
    StartRules,
    first_offered,
    offered_starts,
    refusal,
)

DAY = datetime(2026, 12, 7, tzinfo=UTC)  # Berlin is UTC+1 then
EARLY = DAY - timedelta(days=30)


def at(hour: float) -> datetime:
    return DAY + timedelta(hours=hour)


def rules(minutes: int, step: int = 15, **kw: datetime) -> StartRules:
    return StartRules(
        duration=timedelta(minutes=minutes),
        step_minutes=step,
        not_before=kw.get("not_before", EARLY),
        ends_by=kw.get("ends_by"),
    )


@pytest.mark.parametrize(("minutes", "last"), [(30, 10.5), (60, 10)])
def test_a_block_offers_every_step_start_the_session_fits_in(minutes: int, last: float) -> None:
    block = FreeSlot(at(8), at(11), "UTC")

    starts = list(offered_starts(block, rules(minutes)))

    step = timedelta(minutes=15)
    expected = [at(8) + n * step for n in range(int((at(last) - at(8)) / step) + 1)]
    assert starts == expected
    assert starts[-1] + timedelta(minutes=minutes) == at(11)


def test_the_first_start_is_on_the_consultants_clock() -> None:
    """A block from 08:05 UTC in Berlin (09:05 local) first offers 09:15 local."""
    block = FreeSlot(at(8) + timedelta(minutes=5), at(11), "Europe/Berlin")

    assert first_offered(block, rules(30)) == at(8) + timedelta(minutes=15)


def test_notice_and_window_narrow_the_offer() -> None:
    block = FreeSlot(at(8), at(11), "UTC")
    narrowed = rules(60, not_before=at(8) + timedelta(minutes=20), ends_by=at(10))

    assert list(offered_starts(block, narrowed)) == [at(8.5), at(8.75), at(9)]


def test_a_slot_too_short_for_any_grid_start_offers_none() -> None:
    """35 minutes from 08:05: a 30-minute session fits, but not from a quarter hour."""
    block = FreeSlot(at(8) + timedelta(minutes=5), at(8) + timedelta(minutes=40), "UTC")

    assert first_offered(block, rules(30)) is None


def test_refusals_say_which_rule_a_start_breaks() -> None:
    block = FreeSlot(at(8), at(11), "Europe/Berlin")
    soon = rules(30, not_before=at(9))
    window = rules(30, ends_by=at(10))

    assert refusal(at(9), rules(30), time_zone="Europe/Berlin", slot=block) is None
    assert refusal(at(9) + timedelta(minutes=10), rules(30), time_zone="UTC") is Refusal.OFF_GRID
    assert refusal(at(8.5), soon, time_zone="UTC", slot=block) is Refusal.TOO_SOON
    assert refusal(at(9.75), window, time_zone="UTC", slot=block) is Refusal.OUTSIDE_WINDOW
    assert refusal(at(10.75), rules(30), time_zone="UTC", slot=block) is Refusal.OUTSIDE_SLOT
    assert refusal(at(7.75), rules(30), time_zone="UTC", slot=block) is Refusal.OUTSIDE_SLOT
    # On Kathmandu's clock (UTC+05:45) 09:00 UTC is 14:45: no whole hour.
    hourly = rules(30, step=60)
    assert refusal(at(9), hourly, time_zone="Asia/Kathmandu") is Refusal.OFF_GRID
    assert refusal(at(9) + timedelta(minutes=15), hourly, time_zone="Asia/Kathmandu") is None


def test_an_unknown_zone_counts_as_utc() -> None:
    block = FreeSlot(at(8) + timedelta(minutes=1), at(11), "Mars/Olympus_Mons")

    assert first_offered(block, rules(30)) == at(8.25)
