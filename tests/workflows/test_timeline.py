"""The pure time arithmetic of the consultation process."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from core.settings import Environment, Settings
from core.vocabulary import ParticipantRole
from tests.workflows.support import DEFAULT_TIMINGS, make_input
from workflows.contracts.activity_io import Attendance
from workflows.contracts.workflow_input import LifecycleTimings
from workflows.timeline import (
    MEETING_MINIMUM_PATIENCE,
    absent_party,
    assignment_closes_at,
    ceil_to_minute,
    confirmation_deadline,
    earliest_start,
    hold_expiry,
    meeting_deadline,
    meeting_update_deadline,
    reminder_schedule,
)

TEST_SECRET = SecretStr("unit-test-secret-of-at-least-32-characters")
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEGACY_DEFAULT = next(
    field.default
    for field in fields(LifecycleTimings)
    if field.name == "meeting_deadline_before_start_seconds"
)


def test_timings_come_from_the_settings_with_a_service_type_override() -> None:
    settings = Settings(
        environment=Environment.TEST,
        jwt_secret=TEST_SECRET,
        confirmation_timeout=timedelta(hours=24),
        reminder_offsets=[timedelta(hours=1), timedelta(hours=24)],
        max_assignment_attempts=4,
    )
    timings = LifecycleTimings.from_settings(settings)
    assert timings.confirmation_timeout == timedelta(hours=24)
    assert timings.max_attempts == 4
    assert timings.reminder_offsets == [timedelta(hours=24), timedelta(hours=1)]
    overridden = LifecycleTimings.from_settings(
        settings, confirmation_timeout_override=timedelta(hours=6)
    )
    assert overridden.confirmation_timeout == timedelta(hours=6)


def test_starts_computed_from_now_land_on_whole_minutes() -> None:
    assert ceil_to_minute(NOON) == NOON
    assert ceil_to_minute(NOON + timedelta(seconds=1)) == NOON + timedelta(minutes=1)
    assert earliest_start(NOON, NOON, timedelta(hours=2)) == NOON + timedelta(hours=2)
    later_window = NOON + timedelta(days=1)
    assert earliest_start(NOON, later_window, timedelta(hours=2)) == later_window


def test_assignment_closes_when_no_slot_in_the_window_can_meet_the_notice() -> None:
    request = make_input(NOON, window_end=NOON + timedelta(hours=5), duration_minutes=30)
    assert assignment_closes_at(request) == NOON + timedelta(hours=2, minutes=30)


def test_the_confirmation_deadline_respects_the_minimum_notice() -> None:
    far = NOON + timedelta(days=5)
    assert confirmation_deadline(NOON, far, DEFAULT_TIMINGS) == NOON + timedelta(hours=24)
    soon = NOON + timedelta(hours=6)
    assert confirmation_deadline(NOON, soon, DEFAULT_TIMINGS) == NOON + timedelta(hours=4)


def test_a_hold_outlives_its_confirmation_deadline() -> None:
    deadline = NOON + timedelta(hours=48)
    assert hold_expiry(NOON, deadline, DEFAULT_TIMINGS) == deadline + timedelta(hours=1)
    assert hold_expiry(NOON, None, DEFAULT_TIMINGS) == NOON + timedelta(hours=25)


def test_reminders_already_due_at_booking_are_skipped() -> None:
    start = NOON + timedelta(hours=3)
    assert reminder_schedule(start, DEFAULT_TIMINGS, NOON) == [(3600.0, start - timedelta(hours=1))]
    start = NOON + timedelta(days=3)
    assert [at for _, at in reminder_schedule(start, DEFAULT_TIMINGS, NOON)] == [
        start - timedelta(hours=24),
        start - timedelta(hours=1),
    ]


def test_a_missing_consultant_is_named_before_a_missing_learner() -> None:
    assert absent_party(Attendance()) is ParticipantRole.CONSULTANT
    assert absent_party(Attendance(consultant_joined_at=NOON)) is ParticipantRole.LEARNER
    both = Attendance(consultant_joined_at=NOON, learner_joined_at=NOON)
    assert absent_party(both) is None


def test_the_meeting_deadline_comes_from_the_settings_and_its_default_matches() -> None:
    settings = Settings(
        environment=Environment.TEST,
        jwt_secret=TEST_SECRET,
        meeting_deadline_before_start=timedelta(minutes=30),
    )
    assert LifecycleTimings.from_settings(settings).meeting_deadline_before_start == timedelta(
        minutes=30
    )
    # A workflow submitted before the setting existed falls back to the same default.
    defaults = LifecycleTimings.from_settings(
        Settings(environment=Environment.TEST, jwt_secret=TEST_SECRET)
    )
    assert defaults.meeting_deadline_before_start_seconds == LEGACY_DEFAULT


def test_a_missing_meeting_is_retried_until_its_deadline_before_the_start() -> None:
    start = NOON + timedelta(days=2)
    before = DEFAULT_TIMINGS.meeting_deadline_before_start
    assert meeting_deadline(start, DEFAULT_TIMINGS, NOON) == start - before
    # Booked at short notice, the platform still gets its minimum patience.
    soon = NOON + timedelta(minutes=2)
    assert meeting_deadline(soon, DEFAULT_TIMINGS, NOON) == NOON + MEETING_MINIMUM_PATIENCE
    assert meeting_update_deadline(start, NOON) == start
    assert meeting_update_deadline(soon, NOON) == NOON + MEETING_MINIMUM_PATIENCE
