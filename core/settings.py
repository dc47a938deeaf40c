"""All configuration in one place, read from ``BOOKING_*`` environment variables.

Durations accept seconds (``90``) or ISO-8601 (``PT15M``) so that a demo or a test
can run a whole consultation lifecycle in seconds.
"""

from __future__ import annotations

import json
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVELOPMENT_JWT_SECRET = "development-only-secret-change-me-0000000000"  # noqa: S105
"""The well-known development secret; refused in any other environment."""


def _parse_duration(value: Any) -> Any:
    """Accept plain seconds given as a string ("90", "1.5") besides ISO-8601."""
    if isinstance(value, str):
        stripped = value.strip()
        try:
            return timedelta(seconds=float(stripped))
        except ValueError:
            return stripped
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


def _parse_duration_list(value: Any) -> Any:
    """A JSON list or comma-separated durations ("PT24H,PT1H", "3600, 60")."""
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped.startswith("["):
            return [_parse_duration(part) for part in stripped.split(",") if part.strip()]
        value = json.loads(stripped)
    if isinstance(value, list):
        return [_parse_duration(part) for part in value]
    return value


# NoDecode: pydantic-settings would otherwise insist on JSON for a list from the
# environment and fail on "PT24H,PT1H" before the validator sees it.
DurationList = Annotated[list[timedelta], NoDecode, BeforeValidator(_parse_duration_list)]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class MeetingProvider(StrEnum):
    ROOM_LINK = "room_link"
    HTTP = "http"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOOKING_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path(".data")

    # PostgreSQL. Unset: the dev stack and the tests start an embedded server.
    database_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    # Test each pooled connection with a round trip before lending it out. Off, a
    # connection the server dropped fails the one request or activity attempt that
    # meets it (503 / a retry), and the pool then replaces all its connections.
    database_pre_ping: bool = True
    # Server-side bounds on every connection of the API and the worker (0 switches one
    # off): a statement running, or waiting for a lock, longer than this is cancelled;
    # a transaction left idle longer than this is ended with its connection, so no
    # forgotten transaction can hold locks or hold back the event feed. 30 s: no
    # longer than an activity attempt (nobody waits longer for its result), and long
    # enough for lock waits behind deadlock retries on a busy server.
    database_statement_timeout: Duration = Field(default=timedelta(seconds=30), ge=timedelta(0))
    database_idle_in_transaction_timeout: Duration = Field(
        default=timedelta(seconds=60), ge=timedelta(0)
    )

    # Temporal.
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "consultations"
    temporal_tls: bool = False
    temporal_tls_client_cert_path: Path | None = None
    temporal_tls_client_key_path: Path | None = None
    temporal_tls_server_ca_path: Path | None = None
    temporal_api_key: SecretStr | None = None
    temporal_ui_port: int = 8233
    # How long a worker waits for an unreachable Temporal at start-up before it exits.
    temporal_connect_timeout: Duration = timedelta(minutes=1)

    # Worker: workflows kept in memory between their tasks. Each costs the worker
    # about 0.23 MB (its own sandbox); one not kept is rebuilt from its history, some
    # 30-40 ms of CPU, when it next wakes or is read. Requests spend most of their
    # life parked, so a small cache bounds memory at little cost: 200 keeps 10,000
    # parked requests under 100 MB (bench: idle, workflow_load). The SDK's is 1,000.
    worker_max_cached_workflows: int = Field(default=200, ge=0)

    # HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"

    # Authentication: HS256 shared secret in development, JWKS in production.
    jwt_secret: SecretStr | None = SecretStr(DEVELOPMENT_JWT_SECRET)
    jwt_jwks_url: str | None = None
    jwt_algorithms: list[str] = ["HS256"]
    jwt_issuer: str = "https://iam.example.test"
    jwt_audience: str = "booking-service"
    jwt_roles_claim: str = "roles"
    jwt_leeway: Duration = timedelta(seconds=30)

    # Availability.
    recurrence_max_horizon: Duration = timedelta(days=366)
    max_slots_per_request: int = Field(default=1000, ge=1)
    search_max_window: Duration = timedelta(days=62)

    # Abuse limits. Per user and API process; a rate of 0 switches that limit off.
    rate_limit_read_per_second: float = Field(default=20.0, ge=0)
    rate_limit_read_burst: int = Field(default=100, ge=0)
    rate_limit_write_per_second: float = Field(default=2.0, ge=0)
    rate_limit_write_burst: int = Field(default=20, ge=0)
    # Requests a learner may have open at once (not yet completed, cancelled or rejected),
    # so that nobody can hold a consultant's whole week.
    max_open_requests_per_learner: int = Field(default=5, ge=1)

    # Staged request details whose workflow never stored them (the start failed after
    # the draft was written) are deleted after this long, checked every interval;
    # never while their request's workflow still runs (it will store them).
    request_draft_ttl: Duration = timedelta(days=1)
    request_draft_sweep_interval: Duration = timedelta(minutes=10)

    # Consultation lifecycle (the workflow reads these through its input).
    confirmation_timeout: Duration = timedelta(hours=24)
    confirmation_reminder_before: Duration = timedelta(hours=2)
    assignment_retry_interval: Duration = timedelta(minutes=15)
    max_assignment_attempts: int = Field(default=3, ge=1)
    minimum_notice: Duration = timedelta(hours=2)
    default_request_window: Duration = timedelta(days=14)
    hold_ttl: Duration = timedelta(hours=25)
    reminder_offsets: DurationList = [timedelta(hours=24), timedelta(hours=1)]
    no_show_grace: Duration = timedelta(minutes=10)
    no_show_report_window: Duration = timedelta(hours=24)
    requester_cancel_cutoff: Duration = timedelta(hours=2)

    # Meeting platform.
    meeting_provider: MeetingProvider = MeetingProvider.ROOM_LINK
    meeting_room_base_url: str = "https://meet.jit.si"
    meeting_api_url: str | None = None
    meeting_api_token: SecretStr | None = None
    meeting_api_timeout: Duration = timedelta(seconds=10)
    meeting_webhook_secret: SecretStr | None = None
    # A meeting the platform could not create yet is retried until this long before
    # the session's start; only then is the session cancelled (meeting_platform_failure).
    meeting_deadline_before_start: Duration = Field(default=timedelta(minutes=15), ge=timedelta(0))

    # --- Events and integrations: outgoing webhooks, inbound meeting-platform events ---
    # Attempts per delivery before it is parked for an operator to redeliver.
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    # Retry n waits about base * 2**(n-1) (jittered), at most ``webhook_backoff_max``.
    webhook_backoff_base: Duration = timedelta(seconds=10)
    webhook_backoff_max: Duration = timedelta(hours=1)
    # One HTTP attempt, connect to last byte.
    webhook_timeout: Duration = timedelta(seconds=10)
    # How often an idle dispatcher looks for new events and due retries.
    webhook_poll_interval: Duration = timedelta(seconds=1)
    # Deliveries claimed (and sent concurrently) per round, per dispatcher.
    webhook_batch_size: int = Field(default=20, ge=1, le=500)
    # After a rotation the old secret keeps signing this long, beside the new one.
    webhook_secret_rotation_grace: Duration = timedelta(hours=24)
    # Inbound meeting-platform events older or newer than this are refused (replays).
    meeting_webhook_tolerance: Duration = timedelta(minutes=5)
    # --- end events and integrations ---

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.uses_development_secret and self.jwt_jwks_url is not None:
            # A JWKS URL means real tokens from the IAM; the default secret must not
            # linger beside it as a second, well-known way in.
            self.jwt_secret = None
        if self.environment is not Environment.DEVELOPMENT and self.uses_development_secret:
            raise ValueError(
                "BOOKING_JWT_SECRET is the development placeholder; set a real secret "
                f"or BOOKING_JWT_JWKS_URL when BOOKING_ENVIRONMENT={self.environment.value}"
            )
        if self.jwt_secret is None and self.jwt_jwks_url is None:
            raise ValueError("set BOOKING_JWT_SECRET or BOOKING_JWT_JWKS_URL")
        if self.environment is Environment.PRODUCTION and self.database_url is None:
            raise ValueError("production needs BOOKING_DATABASE_URL")
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("BOOKING_JWT_SECRET must be at least 32 characters")
        return self

    @property
    def uses_development_secret(self) -> bool:
        return (
            self.jwt_secret is not None
            and self.jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET
        )

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise RuntimeError(
                "BOOKING_DATABASE_URL is not set; run `booking dev` to start an embedded "
                "PostgreSQL or point it at a server"
            )
        return self.database_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import time)."""
    return Settings()
