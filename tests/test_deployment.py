"""The deployment files keep their promises (read as YAML; no Docker engine needed):
only the API is published, nothing falls back to a default password or secret, the
Temporal UI is opt-in and read-only, every long-running service is health-checked and
migrations run once before the API and the worker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE = REPO_ROOT / "docker-compose.yml"
PORTS_OVERRIDE = REPO_ROOT / "docker-compose.ports.yml"
SECRET_VARIABLE = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _load(COMPOSE)["services"]
    return services


def test_only_the_api_is_published_by_default(services: dict[str, dict[str, Any]]) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api"}


def test_the_temporal_ui_is_opt_in_and_read_only(services: dict[str, dict[str, Any]]) -> None:
    ui = services["temporal-ui"]
    assert ui["profiles"] == ["ui"]
    assert ui["environment"]["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"


def test_the_ports_override_publishes_on_loopback_only() -> None:
    overrides = _load(PORTS_OVERRIDE)["services"]
    assert set(overrides) == {"postgres", "temporal", "temporal-ui"}
    for name, service in overrides.items():
        for mapping in service["ports"]:
            assert str(mapping).startswith("127.0.0.1:"), (name, mapping)


def test_no_secret_has_a_default() -> None:
    """Every password, secret, key or token is required (``${VAR:?message}``): compose
    refuses to start without it rather than using a value from this repository."""
    text = COMPOSE.read_text()
    secrets = [m for m in INTERPOLATION.finditer(text) if SECRET_VARIABLE.search(m["name"])]
    assert {m["name"] for m in secrets} == {
        "POSTGRES_PASSWORD",
        "BOOKING_JWT_SECRET",
        "BOOKING_PSEUDONYM_SECRET",
        "BOOKING_CALENDAR_SECRET_KEY",
    }
    for match in secrets:
        assert match["rest"].startswith(":?"), match.group(0)
    assert "postgres:postgres@" not in text
    for name, service in _load(COMPOSE)["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_VARIABLE.search(key):
                assert "${" in str(value), (name, key)


def test_long_running_services_are_health_checked(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "temporal", "api"):
        assert services[name]["healthcheck"]["test"], name


def test_migrations_run_once_before_the_api_and_the_worker(
    services: dict[str, dict[str, Any]],
) -> None:
    for job in ("migrate", "setup"):
        assert services[job]["restart"] == "no"
    assert services["migrate"]["command"] == ["booking", "migrate"]
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["setup"]["condition"] == "service_completed_successfully"


def test_the_services_run_as_production(services: dict[str, dict[str, Any]]) -> None:
    for name in ("migrate", "setup", "api", "worker"):
        environment = services[name]["environment"]
        assert environment["BOOKING_ENVIRONMENT"] == "production", name
        assert environment["BOOKING_TEMPORAL_TLS"].startswith("${BOOKING_TEMPORAL_TLS:-"), name


def test_the_env_example_names_every_required_variable() -> None:
    required = {
        m["name"] for m in INTERPOLATION.finditer(COMPOSE.read_text()) if m["rest"].startswith(":?")
    }
    example = (REPO_ROOT / ".env.example").read_text()
    assigned = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert set(assigned) == required
    assert all(value == "" for value in assigned.values())  # no sample secret to copy


def test_the_image_sets_no_secret_and_no_development_mode() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "BOOKING_JWT_SECRET" not in dockerfile
    assert "BOOKING_ENVIRONMENT" not in dockerfile
