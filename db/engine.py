"""Engine and session factories; created by whoever owns the process, never at import."""

from __future__ import annotations

from datetime import timedelta

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
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=settings.database_pre_ping,
        connect_args={"server_settings": server_settings},
    )
    return withhold_values_from_errors(engine)


def _milliseconds(duration: timedelta) -> str:
    return str(round(duration.total_seconds() * 1000))


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
