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

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.local_time import UTC_ZONE, zone_named

SYMMETRIC_JWT_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_JWT_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_JWT_LEEWAY = timedelta(minutes=5)
"""Clock skew tolerated at most: a larger leeway would keep expired tokens alive."""

DEVELOPMENT_JWT_SECRET = "development-only-secret-change-me-0000000000"  # noqa: S105
"""The placeholder secret earlier versions defaulted to: public, so refused in any other
environment. Nothing defaults to it any more; ``booking dev`` makes a secret of its own."""

DEVELOPMENT_PSEUDONYM_SECRET = "development-only-pseudonym-secret-0000000000"  # noqa: S105
"""The well-known key of erased people's pseudonyms in development; refused in production."""

PLACEHOLDER_CALENDAR_KEYS = frozenset({"", "change-me", "changeme", "placeholder", "secret"})
"""Calendar keys left empty or copied from a sample rather than made: refused in production."""
MIN_SECRET_LENGTH = 32
MAX_CALENDAR_HORIZON = timedelta(days=731)


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


def _parse_comma_list(value: Any) -> Any:
    """A JSON list or comma-separated words ("127.0.0.0/8, ::1")."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_parse_comma_list)]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class RateLimitScope(StrEnum):
    PROCESS = "process"
    GLOBAL = "global"


class MeetingProvider(StrEnum):
    ROOM_LINK = "room_link"
    HTTP = "http"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOOKING_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    # Production unless told otherwise: the image, run with nothing set, must not be a
    # development service. ``booking dev`` and the tests choose their environment.
    environment: Environment = Environment.PRODUCTION
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
    # The name the server's certificate is checked against (and sent as SNI) when it
    # differs from the address's host, e.g. an address by IP or through a tunnel.
    temporal_tls_server_name: str | None = None
    temporal_ui_port: int = 8233
    # How long a worker waits for an unreachable Temporal at start-up before it exits.
    temporal_connect_timeout: Duration = timedelta(minutes=1)

    # Worker: workflows kept in memory between their tasks. Each costs the worker
    # about 0.23 MB (its own sandbox); one not kept is rebuilt from its history, some
    # 30-40 ms of CPU, when it next wakes or is read. Requests spend most of their
    # life parked, so a small cache bounds memory at little cost: 200 keeps 10,000
    # parked requests under 100 MB (bench: idle, workflow_load). The SDK's is 1,000.
    worker_max_cached_workflows: int = Field(default=200, ge=0)
    # Task slots and pollers of one worker process (unset: the SDK's defaults, 100 slots
    # of each kind and at most 5 pollers per task type). Every activity of a booking is
    # a local activity holding one database connection while it runs, so local
    # activities beyond database_pool_size + database_max_overflow only queue for the
    # pool (and fail after its 30 s timeout). Workflow tasks and their pollers: at least
    # 2 while workflows are cached (a sticky and a normal queue).
    worker_max_concurrent_workflow_tasks: int | None = Field(default=None, ge=2)
    worker_max_concurrent_activities: int | None = Field(default=None, ge=1)
    worker_max_concurrent_local_activities: int | None = Field(default=None, ge=1)
    worker_workflow_task_pollers: int | None = Field(default=None, ge=2)
    worker_activity_task_pollers: int | None = Field(default=None, ge=1)
    # Health: while its Temporal worker runs and the server answers, the worker
    # rewrites this file every interval; ``booking worker-health`` (a container's
    # health check) calls it unhealthy once three beats are missed. Unset: no file.
    worker_health_file: Path | None = None
    worker_health_interval: Duration = Field(default=timedelta(seconds=10), gt=timedelta(0))

    # Observability. Traces go to an OTLP/HTTP receiver (an OpenTelemetry Collector,
    # Jaeger, Tempo) at this base URL, e.g. http://127.0.0.1:4318 (sent to
    # <endpoint>/v1/traces). Unset: no tracing at all, so nothing is instrumented and no
    # interceptor is installed. The standard OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
    # _COMPRESSION, OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME and OTEL_BSP_* apply beside it.
    otlp_endpoint: str | None = None
    # host:port on which the worker serves the Temporal SDK's own metrics (task slots,
    # schedule-to-start latency, sticky cache) at /metrics for Prometheus; unset: none.
    worker_metrics_address: str | None = None

    # HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Where clients reach the API from outside, for addresses it hands out (calendar
    # feeds); unset: http://BOOKING_API_HOST:BOOKING_API_PORT, right for `booking dev`.
    public_base_url: str | None = None
    # Largest request body, refused with 413 before it is read in full. 1 MiB holds a
    # bulk availability POST of max_slots_per_request slots many times over.
    api_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Requests one API process serves at once; more answer 503 with Retry-After at once
    # instead of queueing for database connections. 0 switches the bound off.
    api_max_concurrent_requests: int = Field(default=200, ge=0)

    # `booking dev`: the port of its embedded PostgreSQL (none runs with database_url).
    postgres_port: int = Field(default=5433, ge=1, le=65535)

    # Authentication: HS256 shared secret in development, JWKS in production. No default:
    # a secret in the code would be a secret everyone knows.
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_algorithms: list[str] = ["HS256"]
    jwt_issuer: str = "https://iam.example.test"
    jwt_audience: str = "booking-service"
    jwt_roles_claim: str = "roles"
    jwt_leeway: Annotated[Duration, Field(ge=timedelta(0), le=MAX_JWT_LEEWAY)] = timedelta(
        seconds=30
    )
    # Longest validity (exp - iat) accepted; longer-lived tokens are refused.
    jwt_max_token_lifetime: Duration = timedelta(hours=24)
    # JWKS: a fetched key set is used this long, then fetched again (revoked keys go).
    jwt_jwks_cache_ttl: Duration = timedelta(minutes=5)
    # While the IAM is unreachable, the last good set stays usable this long past its TTL.
    jwt_jwks_max_stale: Duration = timedelta(hours=1)
    # At most one fetch per interval for unknown key ids and after failures.
    jwt_jwks_refetch_interval: Duration = timedelta(seconds=30)
    jwt_jwks_fetch_timeout: Duration = timedelta(seconds=3)

    # Availability.
    recurrence_max_horizon: Duration = timedelta(days=366)
    max_slots_per_request: int = Field(default=1000, ge=1)
    search_max_window: Duration = timedelta(days=62)
    # Offered starts are this far apart on the consultant's clock, from local midnight,
    # for service types without a step of their own: whole minutes, 1 to 240 (a type's
    # own step is 5 to 240; 1 minute, any whole minute, lets tests book a start now).
    default_start_interval: Duration = timedelta(minutes=15)

    # Calendars. A consultant's linked calendar that failed its last fetch keeps its
    # last good busy time; with this on, such a stale calendar also makes the
    # consultant unbookable until a fetch succeeds (safer, but an outage of their
    # calendar provider then stops their bookings).
    calendar_stale_blocks_booking: bool = False
    # How often each linked calendar is fetched. 15 minutes is what the big calendar
    # apps poll subscribed ICS feeds at (Google takes hours): a conflict entered
    # elsewhere blocks bookings here within that, without hammering anyone's server
    # (a conditional GET or sync token makes an unchanged calendar cost one request).
    calendar_sync_interval: Duration = Field(default=timedelta(minutes=15), ge=timedelta(seconds=1))
    # One fetch, connect to last byte (a CalDAV sync is several requests, each bounded).
    # An ICS export of a busy year is a few MB; 20 s is ample for it and short enough
    # that a hanging server does not hold an activity slot for long.
    calendar_fetch_timeout: Duration = Field(default=timedelta(seconds=20), gt=timedelta(0))
    # Largest calendar body read (ICS file, or one CalDAV answer); a larger one fails
    # the sync (stale, last good set kept) instead of filling the worker's memory.
    # 10 MiB holds some 20,000 ordinary events.
    calendar_max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Busy intervals kept per calendar after expansion and merging. A daily meeting
    # over a year is 366; 20,000 is far beyond any real calendar, and bounds what an
    # RRULE without an end (or a hostile feed) can make us store. More fails the sync.
    calendar_max_busy_intervals: int = Field(default=20_000, ge=1, le=1_000_000)
    # How far ahead recurring events are expanded into busy time. Null: as far as
    # availability can be published (``recurrence_max_horizon``), since no session can
    # be booked beyond that; bounded to 2 years either way.
    calendar_expansion_horizon: Duration | None = None
    # Calendar addresses that may be fetched although they are not public (host names,
    # CIDR ranges), like BOOKING_WEBHOOK_ALLOWED_TARGETS but for the URLs consultants
    # link. Empty: public addresses only; the tests and the dev stack allow loopback.
    calendar_allowed_targets: CommaList = []
    # The key that encrypts linked calendars' addresses and passwords (AES-256-GCM,
    # derived from this secret; at least 32 characters). Required in production;
    # `booking dev` makes one of its own. Changing it makes stored calendars
    # undecryptable: they then fail (stale) until relinked.
    calendar_secret_key: SecretStr | None = None

    # Abuse limits: a token bucket per user and kind of call (reads, writes); a rate of
    # 0 switches that limit off. ``global``: the buckets are shared by every API process
    # through PostgreSQL (one statement per request), with each process's own buckets
    # in front so that a user clearly over the limit costs no round trip. ``process``:
    # only each process's own buckets, for a single API process or behind a gateway
    # that enforces the limit for all of them.
    rate_limit_scope: RateLimitScope = RateLimitScope.GLOBAL
    rate_limit_read_per_second: float = Field(default=20.0, ge=0)
    rate_limit_read_burst: int = Field(default=100, ge=0)
    rate_limit_write_per_second: float = Field(default=2.0, ge=0)
    rate_limit_write_burst: int = Field(default=20, ge=0)
    # How often an API process deletes the shared buckets that have filled up again (a
    # full bucket and no row mean the same); one process at a time does it.
    rate_limit_sweep_interval: Duration = Field(default=timedelta(minutes=1), gt=timedelta(0))
    # Connections per API process for the shared buckets' statement (autocommit, kept
    # open), beside database_pool_size + database_max_overflow. A statement holds one
    # for a single round trip, so a few serve hundreds of requests a second.
    rate_limit_pool_size: int = Field(default=4, ge=1)
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

    # Learners. The zone of a request that names none (IANA); stored with the request
    # at submission, and read for requests stored before requests had a zone.
    default_learner_time_zone: str = UTC_ZONE

    # --- Sessions in people's calendars: the .ics of a session, private feeds ---
    # The right-hand side of every session's iCalendar UID (``<session id>@<this>``).
    # Fixed for good: another domain makes every calendar see every session anew.
    calendar_uid_domain: str = Field(
        default="booking-service.dev", min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.-]+$"
    )
    # A feed holds the person's sessions starting from this long ago up to this far
    # ahead, at most this many (the earliest first).
    calendar_feed_past: Duration = Field(default=timedelta(days=30), ge=timedelta(0))
    calendar_feed_horizon: Duration = Field(default=timedelta(days=366), gt=timedelta(0))
    calendar_feed_max_sessions: int = Field(default=1000, ge=1, le=10_000)
    # How often a subscribed calendar app is asked to fetch the feed again (the apps
    # that honour REFRESH-INTERVAL / X-PUBLISHED-TTL; Google keeps its own pace).
    calendar_feed_refresh_interval: Duration = Field(
        default=timedelta(minutes=15), ge=timedelta(minutes=1)
    )
    # Feeds one person may have that are not revoked.
    calendar_feeds_per_person: int = Field(default=10, ge=1, le=100)
    # --- end sessions in people's calendars ---

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
    # Webhook targets that may be reached although they are not public addresses: host
    # names (exact) and address ranges (CIDR). Empty: public addresses only, which is
    # what production wants; the tests and the dev stack allow loopback.
    webhook_allowed_targets: CommaList = []
    # Inbound meeting-platform events older or newer than this are refused (replays).
    meeting_webhook_tolerance: Duration = timedelta(minutes=5)
    # --- end events and integrations ---

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms_only(cls, algorithms: list[str]) -> list[str]:
        unknown = sorted(set(algorithms) - SYMMETRIC_JWT_ALGORITHMS - ASYMMETRIC_JWT_ALGORITHMS)
        if unknown or not algorithms:
            allowed = ", ".join(sorted(SYMMETRIC_JWT_ALGORITHMS | ASYMMETRIC_JWT_ALGORITHMS))
            raise ValueError(
                f"BOOKING_JWT_ALGORITHMS allows only {allowed}; got {', '.join(unknown) or 'none'}"
            )
        return algorithms

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_endpoint(cls, endpoint: str | None) -> str | None:
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ValueError(
                "BOOKING_OTLP_ENDPOINT is the http:// or https:// URL of an OTLP/HTTP "
                f"receiver (e.g. http://127.0.0.1:4318); got {endpoint!r}"
            )
        return endpoint

    @field_validator("worker_metrics_address")
    @classmethod
    def _host_and_port(cls, address: str | None) -> str | None:
        if address is None:
            return None
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                "BOOKING_WORKER_METRICS_ADDRESS is host:port (e.g. 127.0.0.1:9464); "
                f"got {address!r}"
            )
        return address

    @field_validator("default_learner_time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        if len(name) > 64 or zone_named(name) is None:
            raise ValueError(
                f"BOOKING_DEFAULT_LEARNER_TIME_ZONE must be an IANA time zone "
                f"(e.g. Europe/Berlin); got {name!r}"
            )
        return name

    # --- Personal data: how long what grows is kept ---
    # A sweep (the Temporal Schedule ``booking setup`` creates) removes what is older:
    # events that every subscription has had (or parked), of finished requests;
    retention_delivered_events: Duration = timedelta(days=90)
    # delivered or parked webhook deliveries (the event itself may stay longer);
    retention_webhook_deliveries: Duration = timedelta(days=30)
    # inbound meeting-platform event ids (a replay older than the signature tolerance
    # is refused anyway, so this only has to outlast that);
    retention_inbound_events: Duration = timedelta(days=30)
    # the free-text details of finished requests (the request itself stays);
    retention_request_details: Duration = timedelta(days=180)
    # the join links of sessions that are over;
    retention_meeting_links: Duration = timedelta(days=30)
    # personal data exports (downloadable until then).
    retention_exports: Duration = timedelta(days=7)
    # Pages (items) per part of a personal data export.
    export_page_size: int = Field(default=500, ge=1, le=5000)
    retention_sweep_interval: Duration = timedelta(hours=1)
    # Rows per sweep transaction: each batch is one short transaction.
    retention_batch_size: int = Field(default=1000, ge=1, le=10_000)
    # Temporal keeps a closed workflow's history this long (set by ``booking setup``).
    temporal_namespace_retention: Duration = timedelta(days=30)
    # Erasure replaces a person's id by uuid5(secret + id) everywhere it is kept, and
    # recognises an erased person's token by it. Fixed for good: another secret gives
    # other pseudonyms, and erased people would no longer be recognised.
    pseudonym_secret: SecretStr = SecretStr(DEVELOPMENT_PSEUDONYM_SECRET)
    # The IAM's signed "user deleted" events (POST /v1/webhooks/iam); unset: 503.
    iam_webhook_secret: SecretStr | None = None
    iam_webhook_tolerance: Duration = timedelta(minutes=5)
    # --- end personal data ---

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
            raise ValueError(
                "no way to verify tokens: set BOOKING_JWT_JWKS_URL (the IAM's key set) or "
                "BOOKING_JWT_SECRET (an HS256 secret of at least 32 characters); "
                "`booking dev` makes a local secret of its own"
            )
        if self.environment is Environment.PRODUCTION and self.database_url is None:
            raise ValueError("production needs BOOKING_DATABASE_URL")
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("BOOKING_JWT_SECRET must be at least 32 characters")
        self._check_retention()
        if (
            self.environment is Environment.PRODUCTION
            and self.pseudonym_secret.get_secret_value() == DEVELOPMENT_PSEUDONYM_SECRET
        ):
            raise ValueError("BOOKING_PSEUDONYM_SECRET is the development placeholder")
        if len(self.pseudonym_secret.get_secret_value()) < 32:
            raise ValueError("BOOKING_PSEUDONYM_SECRET must be at least 32 characters")
        self._check_calendars()
        interval = self.default_start_interval
        if interval % timedelta(minutes=1) or not (
            timedelta(minutes=1) <= interval <= timedelta(minutes=240)
        ):
            raise ValueError("BOOKING_DEFAULT_START_INTERVAL must be whole minutes, 1 to 240")
        return self

    def _check_calendars(self) -> None:
        key = self.calendar_secret_key
        if key is None:
            if self.environment is Environment.PRODUCTION:
                raise ValueError(
                    "production needs BOOKING_CALENDAR_SECRET_KEY (at least 32 characters), "
                    "the key of linked calendars' addresses and passwords"
                )
        else:
            value = key.get_secret_value()
            if (
                self.environment is Environment.PRODUCTION
                and value.strip().lower() in PLACEHOLDER_CALENDAR_KEYS
            ):
                raise ValueError("BOOKING_CALENDAR_SECRET_KEY is a placeholder")
            if len(value) < MIN_SECRET_LENGTH:
                raise ValueError("BOOKING_CALENDAR_SECRET_KEY must be at least 32 characters")
        if self.calendar_expansion_horizon is not None and not (
            timedelta(days=1) <= self.calendar_expansion_horizon <= MAX_CALENDAR_HORIZON
        ):
            raise ValueError("BOOKING_CALENDAR_EXPANSION_HORIZON must be 1 day to 2 years")

    @property
    def calendar_horizon(self) -> timedelta:
        """How far ahead busy time is expanded: the setting, else the publishing horizon."""
        horizon = self.calendar_expansion_horizon or self.recurrence_max_horizon
        return min(max(horizon, timedelta(days=1)), MAX_CALENDAR_HORIZON)

    def _check_retention(self) -> None:
        if self.retention_inbound_events <= self.meeting_webhook_tolerance:
            # Forgetting an event id the platform may still replay would let it act twice.
            raise ValueError(
                "BOOKING_RETENTION_INBOUND_EVENTS must be longer than "
                "BOOKING_MEETING_WEBHOOK_TOLERANCE"
            )
        if self.temporal_namespace_retention < timedelta(days=1):
            raise ValueError("BOOKING_TEMPORAL_NAMESPACE_RETENTION is at least 1 day (Temporal)")
        if self.retention_sweep_interval <= timedelta(0):
            raise ValueError("BOOKING_RETENTION_SWEEP_INTERVAL must be positive")

    @property
    def uses_development_secret(self) -> bool:
        return (
            self.jwt_secret is not None
            and self.jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET
        )

    @property
    def api_base_url(self) -> str:
        """The API's address as clients outside use it, without a trailing slash."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def default_start_interval_minutes(self) -> int:
        return self.default_start_interval // timedelta(minutes=1)

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
