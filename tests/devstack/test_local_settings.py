"""What ``booking dev`` runs with when nothing is configured: development, and a secret
of its own kept in the data directory; explicit settings still win."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from booking.devstack.local_settings import (
    LOCAL_CALENDAR_KEY_FILE,
    LOCAL_SECRET_FILE,
    DevelopmentSettings,
)
from booking.devstack.stack import DevStack
from core.settings import DEVELOPMENT_JWT_SECRET, Environment

EXPLICIT_SECRET = "an-explicit-secret-of-at-least-32-characters"


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in [name for name in os.environ if name.startswith("BOOKING_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BOOKING_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_unset_means_development_with_a_private_persisted_secret(data_dir: Path) -> None:
    first = DevelopmentSettings()
    assert first.environment is Environment.DEVELOPMENT
    assert first.jwt_secret is not None
    secret = first.jwt_secret.get_secret_value()
    assert len(secret) >= 32
    assert secret != DEVELOPMENT_JWT_SECRET
    secret_file = data_dir / LOCAL_SECRET_FILE
    assert secret_file.read_text().strip() == secret
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    # The next start (and `booking token`) signs with the same secret.
    again = DevelopmentSettings().jwt_secret
    assert again is not None
    assert again.get_secret_value() == secret
    assert sorted(path.name for path in data_dir.iterdir()) == [
        LOCAL_CALENDAR_KEY_FILE,
        LOCAL_SECRET_FILE,
    ]


def test_development_makes_a_calendar_key_of_its_own(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    first = DevelopmentSettings().calendar_secret_key
    assert first is not None
    key = first.get_secret_value()
    assert len(key) >= 32
    key_file = data_dir / LOCAL_CALENDAR_KEY_FILE
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = DevelopmentSettings().calendar_secret_key
    assert again is not None
    assert again.get_secret_value() == key  # calendars linked yesterday still decrypt
    monkeypatch.setenv("BOOKING_CALENDAR_SECRET_KEY", EXPLICIT_SECRET)
    configured = DevelopmentSettings().calendar_secret_key
    assert configured is not None
    assert configured.get_secret_value() == EXPLICIT_SECRET


def test_each_data_directory_has_its_own_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = DevelopmentSettings().jwt_secret
    monkeypatch.setenv("BOOKING_DATA_DIR", str(tmp_path / "other"))
    second = DevelopmentSettings().jwt_secret
    assert first is not None
    assert second is not None
    assert first.get_secret_value() != second.get_secret_value()


def test_an_explicit_secret_or_key_set_is_kept(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("BOOKING_JWT_SECRET", EXPLICIT_SECRET)
    configured = DevelopmentSettings().jwt_secret
    assert configured is not None
    assert configured.get_secret_value() == EXPLICIT_SECRET
    monkeypatch.delenv("BOOKING_JWT_SECRET")
    monkeypatch.setenv("BOOKING_JWT_JWKS_URL", "https://iam.example.test/jwks.json")
    assert DevelopmentSettings().jwt_secret is None
    assert not (data_dir / LOCAL_SECRET_FILE).exists()


def test_another_environment_gets_no_local_secret(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("BOOKING_ENVIRONMENT", "test")
    with pytest.raises(ValidationError, match="BOOKING_JWT_SECRET"):
        DevelopmentSettings()
    assert not data_dir.exists()


def test_the_worker_and_the_api_are_told_the_environment_and_the_secret() -> None:
    """They run as ``booking worker`` / ``booking api`` with production defaults."""
    settings = DevelopmentSettings(database_url="postgresql+asyncpg://u@127.0.0.1:1/booking")
    assert settings.jwt_secret is not None
    env = DevStack(settings)._child_env()
    assert env["BOOKING_ENVIRONMENT"] == "development"
    assert env["BOOKING_JWT_SECRET"] == settings.jwt_secret.get_secret_value()
    assert env["BOOKING_DATABASE_URL"] == settings.database_url
    # Webhook receivers a developer runs on this machine are reachable.
    assert env["BOOKING_WEBHOOK_ALLOWED_TARGETS"] == "127.0.0.0/8,::1/128,localhost"
    assert env["BOOKING_CALENDAR_ALLOWED_TARGETS"] == "127.0.0.0/8,::1/128,localhost"
    assert settings.calendar_secret_key is not None
    assert env["BOOKING_CALENDAR_SECRET_KEY"] == settings.calendar_secret_key.get_secret_value()
