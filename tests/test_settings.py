"""Settings parsing: durations as seconds or ISO-8601, lists, production guards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import ValidationError

from core.settings import DEVELOPMENT_JWT_SECRET, Environment, Settings, get_settings

REAL_SECRET = "a-real-production-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [name for name in os.environ if name.startswith("BOOKING_")]:
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """The least a test environment sets: its environment and a secret."""
    monkeypatch.setenv("BOOKING_ENVIRONMENT", "test")
    monkeypatch.setenv("BOOKING_JWT_SECRET", REAL_SECRET)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("PT15M", timedelta(minutes=15)),
        ("1.5", timedelta(seconds=1.5)),
        (" 45 ", timedelta(seconds=45)),
        ("P1DT2H", timedelta(days=1, hours=2)),
    ],
)
@pytest.mark.usefixtures("configured")
def test_durations_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: timedelta
) -> None:
    monkeypatch.setenv("BOOKING_CONFIRMATION_TIMEOUT", raw)
    assert Settings().confirmation_timeout == expected


@pytest.mark.usefixtures("configured")
def test_invalid_duration_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKING_NO_SHOW_GRACE", "ten minutes")
    with pytest.raises(ValidationError, match="no_show_grace"):
        Settings()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("PT24H,PT1H", [timedelta(hours=24), timedelta(hours=1)]),
        ("3600, 60", [timedelta(hours=1), timedelta(minutes=1)]),
        ('["PT2H", "PT5M"]', [timedelta(hours=2), timedelta(minutes=5)]),
        ("PT30M", [timedelta(minutes=30)]),
    ],
)
@pytest.mark.usefixtures("configured")
def test_reminder_offsets_list(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[timedelta]
) -> None:
    monkeypatch.setenv("BOOKING_REMINDER_OFFSETS", raw)
    assert Settings().reminder_offsets == expected


def test_nothing_configured_is_refused_naming_the_settings() -> None:
    """No secret anyone could read in the repository, and no development mode, unless
    asked for: the bare image must not start as a development service."""
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "BOOKING_JWT_SECRET" in message
    assert "BOOKING_JWT_JWKS_URL" in message
    assert Settings.model_fields["jwt_secret"].default is None


def test_the_default_environment_is_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKING_JWT_SECRET", REAL_SECRET)
    monkeypatch.setenv("BOOKING_PSEUDONYM_SECRET", REAL_SECRET[::-1])
    monkeypatch.setenv("BOOKING_CALENDAR_SECRET_KEY", REAL_SECRET.upper())
    monkeypatch.setenv("BOOKING_DATABASE_URL", "postgresql+asyncpg://db/booking")
    settings = Settings()
    assert settings.environment is Environment.PRODUCTION
    assert settings.reminder_offsets == [timedelta(hours=24), timedelta(hours=1)]


@pytest.mark.usefixtures("configured")
def test_the_placeholder_secret_is_usable_in_development_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOKING_JWT_SECRET", DEVELOPMENT_JWT_SECRET)
    with pytest.raises(ValidationError, match="development placeholder"):
        Settings()
    monkeypatch.setenv("BOOKING_ENVIRONMENT", "development")
    assert Settings().uses_development_secret


def test_production_refuses_the_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKING_ENVIRONMENT", "production")
    monkeypatch.setenv("BOOKING_DATABASE_URL", "postgresql+asyncpg://db/booking")
    with pytest.raises(ValidationError, match="BOOKING_JWT_SECRET"):
        Settings()
    monkeypatch.setenv("BOOKING_JWT_SECRET", DEVELOPMENT_JWT_SECRET)
    with pytest.raises(ValidationError, match="development placeholder"):
        Settings()


def test_production_with_a_real_secret_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKING_ENVIRONMENT", "production")
    monkeypatch.setenv("BOOKING_JWT_SECRET", REAL_SECRET)
    with pytest.raises(ValidationError, match="BOOKING_DATABASE_URL"):
        Settings()
    monkeypatch.setenv("BOOKING_DATABASE_URL", "postgresql+asyncpg://db/booking")
    with pytest.raises(ValidationError, match="BOOKING_PSEUDONYM_SECRET"):
        Settings()  # erasures need a key of their own, not the development one
    monkeypatch.setenv("BOOKING_PSEUDONYM_SECRET", REAL_SECRET[::-1])
    with pytest.raises(ValidationError, match="BOOKING_CALENDAR_SECRET_KEY"):
        Settings()  # linked calendars' addresses are encrypted with it
    monkeypatch.setenv("BOOKING_CALENDAR_SECRET_KEY", "change-me")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()
    monkeypatch.setenv("BOOKING_CALENDAR_SECRET_KEY", REAL_SECRET.upper())
    settings = Settings()
    assert not settings.uses_development_secret
    assert settings.require_database_url() == "postgresql+asyncpg://db/booking"


@pytest.mark.usefixtures("configured")
def test_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKING_JWT_SECRET", "too-short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings()


@pytest.mark.usefixtures("configured")
def test_missing_database_url_has_a_helpful_error() -> None:
    with pytest.raises(RuntimeError, match="booking dev"):
        Settings().require_database_url()


@pytest.mark.usefixtures("configured")
def test_leeway_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKING_JWT_LEEWAY", "PT5M")
    assert Settings().jwt_leeway == timedelta(minutes=5)
    monkeypatch.setenv("BOOKING_JWT_LEEWAY", "PT6M")
    with pytest.raises(ValidationError, match="jwt_leeway"):
        Settings()


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize("algorithms", ['["none"]', '["HS256", "XS999"]', "[]"])
def test_only_known_jwt_algorithms_are_allowed(
    monkeypatch: pytest.MonkeyPatch, algorithms: str
) -> None:
    monkeypatch.setenv("BOOKING_JWT_ALGORITHMS", algorithms)
    with pytest.raises(ValidationError, match="BOOKING_JWT_ALGORITHMS allows only"):
        Settings()


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BOOKING_RETENTION_INBOUND_EVENTS", "60", "RETENTION_INBOUND_EVENTS"),
        ("BOOKING_TEMPORAL_NAMESPACE_RETENTION", "PT12H", "NAMESPACE_RETENTION"),
        ("BOOKING_RETENTION_SWEEP_INTERVAL", "0", "SWEEP_INTERVAL"),
    ],
)
def test_retention_settings_that_would_lose_what_is_needed_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    """Forgetting inbound event ids within the replay window would let a replay act
    twice; Temporal keeps closed workflows at least a day."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


@pytest.mark.usefixtures("configured")
def test_retention_defaults() -> None:
    settings = Settings()
    assert settings.retention_request_details == timedelta(days=180)
    assert settings.retention_inbound_events > settings.meeting_webhook_tolerance


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize(("raw", "minutes"), [("PT30M", 30), ("60", 1), ("PT4H", 240)])
def test_the_default_start_interval_is_whole_minutes(
    monkeypatch: pytest.MonkeyPatch, raw: str, minutes: int
) -> None:
    monkeypatch.setenv("BOOKING_DEFAULT_START_INTERVAL", raw)
    assert Settings().default_start_interval_minutes == minutes


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize("raw", ["0", "PT241M", "PT90S"])
def test_a_default_start_interval_off_the_range_is_refused(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("BOOKING_DEFAULT_START_INTERVAL", raw)
    with pytest.raises(ValidationError, match="BOOKING_DEFAULT_START_INTERVAL"):
        Settings()


@pytest.mark.usefixtures("configured")
def test_the_default_learner_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().default_learner_time_zone == "UTC"
    monkeypatch.setenv("BOOKING_DEFAULT_LEARNER_TIME_ZONE", "Asia/Tokyo")
    assert Settings().default_learner_time_zone == "Asia/Tokyo"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe", "", "Asia/" + "x" * 80])
@pytest.mark.usefixtures("configured")
def test_an_unknown_default_learner_time_zone_is_refused(
    monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    monkeypatch.setenv("BOOKING_DEFAULT_LEARNER_TIME_ZONE", zone)
    with pytest.raises(ValidationError, match="BOOKING_DEFAULT_LEARNER_TIME_ZONE"):
        Settings()


@pytest.mark.usefixtures("configured")
def test_calendar_settings_have_sensible_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.calendar_sync_interval == timedelta(minutes=15)
    # Unset: as far ahead as availability can be published, so no bookable time is
    # left without its busy time.
    assert settings.calendar_horizon == settings.recurrence_max_horizon
    monkeypatch.setenv("BOOKING_CALENDAR_EXPANSION_HORIZON", "P30D")
    assert Settings().calendar_horizon == timedelta(days=30)
    monkeypatch.setenv("BOOKING_CALENDAR_EXPANSION_HORIZON", "P1000D")
    with pytest.raises(ValidationError, match="BOOKING_CALENDAR_EXPANSION_HORIZON"):
        Settings()
    monkeypatch.delenv("BOOKING_CALENDAR_EXPANSION_HORIZON")
    monkeypatch.setenv("BOOKING_CALENDAR_SECRET_KEY", "too-short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings()


@pytest.mark.usefixtures("configured")
def test_the_public_address_defaults_to_where_the_api_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOKING_API_PORT", "8010")
    assert Settings().api_base_url == "http://127.0.0.1:8010"
    monkeypatch.setenv("BOOKING_PUBLIC_BASE_URL", "https://booking.example.com/")
    assert Settings().api_base_url == "https://booking.example.com"


@pytest.mark.usefixtures("configured")
def test_the_calendar_uid_domain_is_a_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKING_CALENDAR_UID_DOMAIN", "sessions.example.com")
    assert Settings().calendar_uid_domain == "sessions.example.com"
    monkeypatch.setenv("BOOKING_CALENDAR_UID_DOMAIN", "bad domain@x")
    with pytest.raises(ValidationError, match="calendar_uid_domain"):
        Settings()
