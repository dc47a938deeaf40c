"""Engine and session factories; created by whoever owns the process, never at import."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.settings import Settings
from db.log_redaction import withhold_values_from_errors


def create_engine(settings: Settings, *, application_name: str = "booking") -> AsyncEngine:
    """``application_name`` tells this process's connections apart in
    ``pg_stat_activity`` (which process holds a lock, whose connections to end).

    ``hide_parameters``: a failing statement's error (and so every log line and
    traceback that shows it) names the SQL but not the bound values, which can be a
    learner's details text or a webhook signing secret; ``withhold_values_from_errors``
    covers what the driver itself quotes. The statement and idle-in-transaction
    timeouts are set per connection.
    """
    return _engine(
        settings,
        application_name,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=settings.database_pre_ping,
    )


def create_autocommit_engine(
    settings: Settings, *, application_name: str, pool_size: int
) -> AsyncEngine:
    """Connections on which every statement commits on its own, for work that must not
    join (or wait for) anyone's transaction: one statement, one round trip, no BEGIN
    or COMMIT. No pre-ping (it would double the round trips): the caller retries a
    statement whose connection turns out to be gone (``connection_invalidated``).
    Exactly ``pool_size`` connections, kept open: no connection is made per use."""
    return _engine(
        settings,
        application_name,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        isolation_level="AUTOCOMMIT",
    )


def _engine(settings: Settings, application_name: str, **options: Any) -> AsyncEngine:
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
    return withhold_values_from_errors(engine)


def _milliseconds(duration: timedelta) -> str:
    return str(round(duration.total_seconds() * 1000))


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
