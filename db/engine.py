"""Engine and session factories; created by whoever owns the process, never at import."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.settings import Settings
from db.log_redaction import withhold_values_from_errors

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider


def create_engine(
    settings: Settings,
    *,
    application_name: str = "booking",
    tracer_provider: TracerProvider | None = None,
) -> AsyncEngine:
    """``application_name`` tells this process's connections apart in
    ``pg_stat_activity`` (which process holds a lock, whose connections to end).

    ``hide_parameters``: a failing statement's error (and so every log line and
    traceback that shows it) names the SQL but not the bound values, which can be a
    learner's details text or a webhook signing secret; ``withhold_values_from_errors``
    covers what the driver itself quotes. The statement and idle-in-transaction
    timeouts are set per connection.

    ``tracer_provider`` (tracing on): a span per SQL statement, in the trace of the
    request or activity that runs it (see ``trace_statements``).
    """
    engine = _engine(
        settings,
        application_name,
        tracer_provider,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=False,
    )
    if settings.database_pre_ping:
        ping_on_checkout(engine)
    return engine


def create_autocommit_engine(
    settings: Settings,
    *,
    application_name: str,
    pool_size: int,
    tracer_provider: TracerProvider | None = None,
) -> AsyncEngine:
    """Connections on which every statement commits on its own, for work that must not
    join (or wait for) anyone's transaction: one statement, one round trip, no BEGIN
    or COMMIT. No pre-ping (it would double the round trips): the caller retries a
    statement whose connection turns out to be gone (``connection_invalidated``).
    Exactly ``pool_size`` connections, kept open: no connection is made per use."""
    return _engine(
        settings,
        application_name,
        tracer_provider,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        isolation_level="AUTOCOMMIT",
    )


def _engine(
    settings: Settings,
    application_name: str,
    tracer_provider: TracerProvider | None,
    **options: Any,
) -> AsyncEngine:
    server_settings = {
        "application_name": application_name,
        "statement_timeout": _milliseconds(settings.database_statement_timeout),
        "idle_in_transaction_session_timeout": _milliseconds(
            settings.database_idle_in_transaction_timeout
        ),
    }
    engine = create_async_engine(
        settings.require_database_url(),
        hide_parameters=True,
        connect_args={"server_settings": server_settings},
        **options,
    )
    engine = withhold_values_from_errors(engine)
    if tracer_provider is not None:
        trace_statements(engine, tracer_provider)
    return engine


PING = "SELECT 1"
"""Sent as a simple query (no arguments): asyncpg fails on the empty statement's answer."""


def ping_on_checkout(engine: AsyncEngine) -> None:
    """Test each pooled connection with one round trip before lending it out.

    SQLAlchemy's own pre-ping (``pool_pre_ping``) on asyncpg wraps its empty statement
    in a transaction: BEGIN, the statement and ROLLBACK, three round trips before every
    transaction. One statement alone, in the simple query protocol (no prepared
    statement, which a transaction-mode pgbouncer could not keep either), tells as
    much: a connection the server dropped fails it. The pool then throws away every
    connection made before that moment (a server restart ends them all) and lends a
    fresh one, as it does after a failed pre-ping.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            dbapi_connection.run_async(lambda connection: connection.execute(PING))
        except Exception as error:
            raise exc.InvalidatePoolError(
                f"the pooled connection failed its ping: {error}"
            ) from error


def trace_statements(engine: AsyncEngine, tracer_provider: TracerProvider) -> None:
    """A CLIENT span per statement, named by its first word (``SELECT``, ``UPDATE``),
    with the SQL text in ``db.statement`` and never the bound values.

    SQLAlchemy's instrumentation, attached to this engine's events only, rather than
    asyncpg's: that one patches asyncpg's classes for every connection of the process,
    and adds a span for each ``BEGIN``, ``COMMIT`` and pre-ping round trip: 7 spans
    instead of 2 for a transaction of two statements, measured with SQLAlchemy's own
    three-round-trip pre-ping (bench/README.md). The pool usage gauge it can also keep
    goes to a no-op meter: the service's metrics are Prometheus's.
    """
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeterProvider

    pool_usage = (
        NoOpMeterProvider()
        .get_meter(__name__)
        .create_up_down_counter("db.client.connections.usage")
    )
    EngineTracer(  # type: ignore[no-untyped-call]  # the package ships no type hints
        tracer_provider.get_tracer(__name__), engine.sync_engine, pool_usage
    )


def _milliseconds(duration: timedelta) -> str:
    return str(round(duration.total_seconds() * 1000))


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
