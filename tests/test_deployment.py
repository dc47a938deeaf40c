"""The deployment files keep their promises (read as YAML; no Docker engine needed):
only the entry point in front of the API replicas is published, nothing falls back to
a default password or secret, the Temporal UI is opt-in and read-only, Temporal is a
server on PostgreSQL persistence (not the dev server), every long-running service is
health-checked, the API and the worker scale (`--scale api=2 --scale worker=3`) within
PostgreSQL's connections, and migrations run once before the API and the worker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import Settings

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


def test_only_the_entry_point_is_published_by_default(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api-proxy"}
    assert services["api-proxy"]["ports"] == ["8000:8000"]


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
    long_running = {name for name, service in services.items() if service["restart"] != "no"}
    assert long_running >= {"postgres", "temporal", "temporal-ui", "api", "worker", "api-proxy"}
    for name in long_running:
        assert services[name]["healthcheck"]["test"], name
    one_shot = {name for name, service in services.items() if service["restart"] == "no"}
    assert one_shot == {"temporal-schema", "temporal-namespace", "migrate", "setup"}


def test_the_api_health_check_asks_its_readiness_route(
    services: dict[str, dict[str, Any]],
) -> None:
    from api.routes.health import router

    probe = " ".join(services["api"]["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:8000(/[a-z]+)", probe)
    assert path is not None, probe
    assert path[1] == "/readyz"
    assert path[1] in {getattr(route, "path", None) for route in router.routes}


def test_the_worker_health_check_reads_the_heartbeat_the_worker_writes(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "booking", "worker-health"]
    assert Path(worker["environment"]["BOOKING_WORKER_HEALTH_FILE"]).is_absolute()
    # The worker beats every 10 s; a check every 30 s looks at the last three.
    assert worker["healthcheck"]["interval"] == "30s"


def test_temporal_is_a_server_on_postgresql_not_the_dev_server(
    services: dict[str, dict[str, Any]],
) -> None:
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/server:")
    assert "start-dev" not in COMPOSE.read_text()
    assert not any("auto-setup" in str(service.get("image")) for service in services.values())
    environment = temporal["environment"]
    assert environment["DB"] == "postgres12"
    assert environment["POSTGRES_SEEDS"] == "postgres"  # the compose service
    assert {environment["DBNAME"], environment["VISIBILITY_DBNAME"]} == {
        "temporal",
        "temporal_visibility",
    }
    assert environment["POSTGRES_PWD"].startswith("${POSTGRES_PASSWORD:?")
    # The schema is set up first, by the official admin tools, on the same databases.
    assert temporal["depends_on"] == {
        "temporal-schema": {"condition": "service_completed_successfully"}
    }
    schema = services["temporal-schema"]
    assert schema["image"].startswith("temporalio/admin-tools:")
    assert schema["environment"]["DBNAME"] == environment["DBNAME"]
    assert schema["environment"]["VISIBILITY_DBNAME"] == environment["VISIBILITY_DBNAME"]
    script = (REPO_ROOT / "deploy/temporal/setup-schema.sh").read_text()
    assert "SQL_PLUGIN=postgres12" in script
    for step in ("create-database", "setup-schema", "update-schema"):
        assert step in script
    # The app's database is another one on the same server.
    assert "@postgres:5432/booking" in COMPOSE.read_text()
    assert environment["DYNAMIC_CONFIG_FILE_PATH"] == "config/dynamicconfig/booking.yaml"
    assert (REPO_ROOT / "deploy/temporal/dynamicconfig/booking.yaml").is_file()
    # The namespace exists before `booking setup` registers its search attributes.
    assert services["setup"]["depends_on"] == {
        "temporal-namespace": {"condition": "service_completed_successfully"}
    }


def test_the_api_and_the_worker_scale(services: dict[str, dict[str, Any]]) -> None:
    """`docker compose up --scale api=N --scale worker=N`: replicas need no name of
    their own and no host port of their own; the proxy finds every API replica."""
    for name, service in services.items():
        assert "container_name" not in service, name
    for name in ("api", "worker"):
        assert "ports" not in services[name], name
    proxy = (REPO_ROOT / "deploy/nginx/api.conf").read_text()
    assert re.search(r"server api:8000 resolve;", proxy)
    assert "resolver 127.0.0.11" in proxy  # Docker's DNS, one address per replica
    assert services["api-proxy"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert services["api"]["environment"]["BOOKING_RATE_LIMIT_SCOPE"] == "global"


def test_every_mounted_file_is_in_the_repository(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), (name, volume)


def test_scaled_out_pools_fit_postgresql_max_connections(
    services: dict[str, dict[str, Any]],
) -> None:
    """Three workers and two APIs, each at pool + overflow (the APIs also with the
    shared rate limit's pool), plus Temporal's own pools (20 + 10 connections by
    default) and a one-shot job, within max_connections."""
    command = services["postgres"]["command"]
    max_connections = int(next(arg for arg in command if arg.startswith("max_connections="))[16:])
    environment = services["api"]["environment"]

    def default(value: str) -> int:
        return int(INTERPOLATION.fullmatch(value)["rest"].removeprefix(":-"))  # type: ignore[index]

    per_process = default(environment["BOOKING_DATABASE_POOL_SIZE"]) + default(
        environment["BOOKING_DATABASE_MAX_OVERFLOW"]
    )
    rate_limits = Settings.model_fields["rate_limit_pool_size"].default
    temporal, one_shot, superuser_reserved = 20 + 10, per_process, 3
    needed = 3 * per_process + 2 * (per_process + rate_limits)
    needed += temporal + one_shot + superuser_reserved
    assert needed <= max_connections, (needed, max_connections)


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
