"""The ``booking`` command line: tokens, configuration errors, migration config."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

import booking.cli
import booking.migrate
from booking.cli import app
from booking.demo import DEMO_CONSULTANT_ID, DEMO_LEARNER_ID
from booking.devstack.local_settings import LOCAL_SECRET_FILE, DevelopmentSettings
from core.settings import Environment, Settings, get_settings
from core.worker_health import heartbeat

SECRET = "a-test-secret-that-is-long-enough-0123456789"
runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No BOOKING_* variable from the surrounding shell, fresh settings per test."""
    for name in [name for name in os.environ if name.startswith("BOOKING_")]:
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _decode(token: str) -> dict[str, object]:
    settings = Settings(environment=Environment.TEST, jwt_secret=SecretStr(SECRET))
    claims: dict[str, object] = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={"require": ["exp", "iat", "sub", "iss", "aud"]},
    )
    return claims


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "dev",
        "api",
        "worker",
        "worker-health",
        "migrate",
        "setup",
        "token",
        "temporal",
    ):
        assert command in result.stdout


def test_token_is_accepted_with_the_configured_audience_and_issuer() -> None:
    subject = uuid.uuid4()
    result = runner.invoke(
        app,
        ["token", "--role", "consultant", "--sub", str(subject), "--ttl", "120"],
        env={"BOOKING_JWT_SECRET": SECRET},
    )
    assert result.exit_code == 0, result.output
    claims = _decode(result.stdout.strip())
    assert claims["sub"] == str(subject)
    assert claims["roles"] == ["consultant"]
    assert isinstance(claims["exp"], int)
    assert isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == 120


def test_token_defaults_to_the_demo_user_and_accepts_several_roles() -> None:
    result = runner.invoke(
        app,
        ["token", "--role", "learner", "--role", "operator"],
        env={"BOOKING_JWT_SECRET": SECRET},
    )
    assert result.exit_code == 0, result.output
    claims = _decode(result.stdout.strip())
    assert claims["sub"] == str(DEMO_LEARNER_ID)
    assert claims["roles"] == ["learner", "operator"]

    result = runner.invoke(
        app, ["token", "--role", "consultant"], env={"BOOKING_JWT_SECRET": SECRET}
    )
    assert _decode(result.stdout.strip())["sub"] == str(DEMO_CONSULTANT_ID)


def test_token_uses_the_configured_roles_claim() -> None:
    result = runner.invoke(
        app,
        ["token", "--role", "operator"],
        env={"BOOKING_JWT_SECRET": SECRET, "BOOKING_JWT_ROLES_CLAIM": "https://example.test/roles"},
    )
    claims = jwt.decode(
        result.stdout.strip(), SECRET, algorithms=["HS256"], options={"verify_aud": False}
    )
    assert claims["https://example.test/roles"] == ["operator"]


def test_token_without_a_secret_is_refused() -> None:
    result = runner.invoke(app, ["token", "--role", "learner"], env={"BOOKING_ENVIRONMENT": "test"})
    assert result.exit_code != 0
    assert "BOOKING_JWT_SECRET" in result.stderr
    assert result.stdout == ""


def test_token_in_development_signs_with_the_dev_stack_secret(tmp_path: Path) -> None:
    """What `booking dev` prints and what `booking token` mints use one secret, the one
    kept in the data directory; no secret from the repository is involved."""
    result = runner.invoke(
        app, ["token", "--role", "learner"], env={"BOOKING_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    local_secret = (tmp_path / LOCAL_SECRET_FILE).read_text().strip()
    claims = jwt.decode(
        result.stdout.strip(), local_secret, algorithms=["HS256"], options={"verify_aud": False}
    )
    assert claims["sub"] == str(DEMO_LEARNER_ID)


@pytest.mark.parametrize("command", ["api", "worker"])
def test_api_and_worker_refuse_to_start_without_a_secret_or_key_set(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    started: list[str] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: started.append("api"))

    async def run_worker(settings: Settings) -> None:
        started.append("worker")

    monkeypatch.setattr("worker.run_worker", run_worker)
    result = runner.invoke(
        app, [command], env={"BOOKING_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:1/db"}
    )
    assert result.exit_code == 2, result.output
    assert "BOOKING_JWT_SECRET" in result.stderr
    assert "BOOKING_JWT_JWKS_URL" in result.stderr
    assert started == []


def test_token_with_a_jwks_url_is_refused() -> None:
    result = runner.invoke(
        app,
        ["token", "--role", "learner"],
        env={"BOOKING_JWT_JWKS_URL": "https://iam.example.test/.well-known/jwks.json"},
    )
    assert result.exit_code != 0
    assert "BOOKING_JWT_JWKS_URL" in result.stderr


def test_token_refuses_a_lifetime_the_api_would_reject() -> None:
    result = runner.invoke(
        app,
        ["token", "--role", "learner", "--ttl", str(25 * 3600)],
        env={"BOOKING_JWT_SECRET": SECRET},
    )
    assert result.exit_code != 0
    assert "BOOKING_JWT_MAX_TOKEN_LIFETIME" in result.stderr


def test_token_rejects_an_unknown_role() -> None:
    result = runner.invoke(app, ["token", "--role", "admin"], env={"BOOKING_JWT_SECRET": SECRET})
    assert result.exit_code != 0


def test_invalid_configuration_is_reported_without_a_traceback() -> None:
    result = runner.invoke(
        app, ["token", "--role", "learner"], env={"BOOKING_ENVIRONMENT": "production"}
    )
    assert result.exit_code == 2
    assert "invalid configuration" in result.stderr
    assert "Traceback" not in result.output


def test_migrate_without_a_database_url_is_refused() -> None:
    result = runner.invoke(
        app, ["migrate"], env={"BOOKING_ENVIRONMENT": "test", "BOOKING_JWT_SECRET": SECRET}
    )
    assert result.exit_code == 1
    assert "BOOKING_DATABASE_URL" in result.stderr


def test_worker_health_reads_the_heartbeat(tmp_path: Path) -> None:
    health = tmp_path / "worker.health"
    env = {
        "BOOKING_ENVIRONMENT": "test",
        "BOOKING_JWT_SECRET": SECRET,
        "BOOKING_WORKER_HEALTH_FILE": str(health),
        "BOOKING_WORKER_HEALTH_INTERVAL": "10",
    }
    missing = runner.invoke(app, ["worker-health"], env=env)
    assert missing.exit_code == 1
    assert "no heartbeat" in missing.stderr

    health.write_text(heartbeat(datetime.now(UTC) - timedelta(seconds=5), 1))
    assert runner.invoke(app, ["worker-health"], env=env).exit_code == 0

    health.write_text(heartbeat(datetime.now(UTC) - timedelta(minutes=2), 1))
    stale = runner.invoke(app, ["worker-health"], env=env)
    assert stale.exit_code == 1
    assert "unhealthy" in stale.stderr


def test_worker_health_without_a_heartbeat_file_set_is_a_configuration_error() -> None:
    result = runner.invoke(
        app, ["worker-health"], env={"BOOKING_ENVIRONMENT": "test", "BOOKING_JWT_SECRET": SECRET}
    )
    assert result.exit_code == 2
    assert "BOOKING_WORKER_HEALTH_FILE" in result.stderr


def test_alembic_config_uses_the_repository_ini() -> None:
    config = booking.migrate.alembic_config("postgresql+asyncpg://u@h/db")
    assert config.config_file_name == str(booking.migrate.ALEMBIC_INI)
    assert config.attributes["database_url"] == "postgresql+asyncpg://u@h/db"


def test_alembic_config_without_ini_points_at_the_migrations_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(booking.migrate, "ALEMBIC_INI", tmp_path / "missing.ini")
    config = booking.migrate.alembic_config()
    location = Path(config.get_main_option("script_location") or "")
    assert (location / "env.py").is_file()
    assert (location / "versions").is_dir()


def test_dev_help_lists_every_port_setting(tmp_path: Path) -> None:
    from booking.devstack.stack import DevStack

    result = runner.invoke(app, ["dev", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    needs = DevStack(DevelopmentSettings(data_dir=tmp_path)).port_needs()
    assert len(needs) == 4
    for need in needs:
        assert need.setting in result.stdout
        assert need.option in result.stdout


def test_dev_port_options_move_the_ports(tmp_path: Path) -> None:
    import socket

    from booking.devstack.ports import free_port

    with socket.socket() as api, socket.socket() as temporal:
        for sock in (api, temporal):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        busy_api, busy_temporal = api.getsockname()[1], temporal.getsockname()[1]
        result = runner.invoke(
            app,
            [
                *("dev", "--api-port", str(busy_api), "--temporal-port", str(busy_temporal)),
                *("--postgres-port", str(free_port()), "--temporal-ui-port", str(free_port())),
            ],
            env={"BOOKING_DATA_DIR": str(tmp_path), "BOOKING_API_PORT": "1"},
        )
    assert result.exit_code == 1
    assert f"127.0.0.1:{busy_api}  the API (BOOKING_API_PORT)" in result.stderr
    assert f"127.0.0.1:{busy_temporal}  the Temporal server" in result.stderr
    assert "2 ports not available" in result.stderr, "the option wins over the variable"
