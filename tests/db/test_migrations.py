"""The migrations build exactly the models' schema, both ways, from an empty database."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from core.vocabulary import DeliveryStatus, RequestStatus, SessionStatus, SlotStatus
from db.base import Base
from db.errors import CHECK_VIOLATION, EXCLUSION_VIOLATION, sqlstate
from tests.support.database import (
    alembic_config,
    create_scratch_database,
    drop_database,
)

APPLICATION_TABLES = {
    "consultation_service_types",
    "consultant_profiles",
    "consultant_availability_slots",
    "consultation_requests",
    "scheduled_sessions",
    "domain_events",
}


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """A database of its own: these tests migrate up and down."""
    url = create_scratch_database(database_url, prefix="booking_migrations")
    yield url
    drop_database(url)


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        tables = {row[0] for row in rows}
    await engine.dispose()
    return tables


def test_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("postgresql+asyncpg://unused/unused"))
    assert len(script.get_heads()) == 1


def test_upgrade_from_empty_then_downgrade_to_base(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    assert asyncio.run(_tables(empty_database)) >= APPLICATION_TABLES

    command.downgrade(config, "base")
    assert asyncio.run(_tables(empty_database)) <= {"alembic_version"}

    command.upgrade(config, "head")  # and up again: the downgrade left nothing behind
    assert asyncio.run(_tables(empty_database)) >= APPLICATION_TABLES


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _autogenerate_diff(url: str) -> list[object]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(_differences)
    await engine.dispose()
    return diff


def test_models_and_migrations_agree(database_url: str) -> None:
    assert asyncio.run(_autogenerate_diff(database_url)) == []


@pytest.mark.parametrize(
    ("table", "vocabulary"),
    [
        ("consultant_availability_slots", SlotStatus),
        ("consultation_requests", RequestStatus),
        ("scheduled_sessions", SessionStatus),
        ("webhook_deliveries", DeliveryStatus),
    ],
)
async def test_status_checks_allow_exactly_the_vocabulary(
    database_url: str, table: str, vocabulary: type[StrEnum]
) -> None:
    """The migrations froze each status list into a CHECK constraint; it must still be
    the vocabulary's, member for member."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            definition = await connection.scalar(
                text(
                    "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
                    " WHERE c.conrelid = CAST(:table AS regclass)"
                    " AND c.conname LIKE '%status_allowed'"
                ),
                {"table": table},
            )
    finally:
        await engine.dispose()
    assert definition is not None
    allowed = set(re.findall(r"'([a-z_]+)'::", definition))
    assert allowed == {member.value for member in vocabulary}


async def test_exclusion_constraint_rejects_overlapping_slots(database_url: str) -> None:
    engine = create_async_engine(database_url)
    consultant = uuid.uuid4()
    start = datetime(2030, 1, 7, 9, tzinfo=UTC)
    insert = text(
        "INSERT INTO consultant_availability_slots (consultant_user_id, start_time, end_time) "
        "VALUES (:consultant, :start, :end)"
    )
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO consultant_profiles (consultant_user_id) VALUES (:id)"),
                {"id": consultant},
            )
            await connection.execute(
                insert,
                {"consultant": consultant, "start": start, "end": start + timedelta(hours=1)},
            )
            # Touching end to start is fine: ranges are half-open.
            await connection.execute(
                insert,
                {
                    "consultant": consultant,
                    "start": start + timedelta(hours=1),
                    "end": start + timedelta(hours=2),
                },
            )
        with pytest.raises(IntegrityError) as caught:
            async with engine.begin() as connection:
                await connection.execute(
                    insert,
                    {
                        "consultant": consultant,
                        "start": start + timedelta(minutes=30),
                        "end": start + timedelta(minutes=90),
                    },
                )
        assert sqlstate(caught.value) == EXCLUSION_VIOLATION
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM consultant_profiles WHERE consultant_user_id = :id"),
                {"id": consultant},
            )
        await engine.dispose()


async def test_updated_at_is_maintained_by_the_database(database_url: str) -> None:
    engine = create_async_engine(database_url)
    name = f"trigger-{uuid.uuid4()}"
    try:
        async with engine.begin() as connection:
            created = (
                await connection.execute(
                    text(
                        "INSERT INTO consultation_service_types (name, default_duration_minutes) "
                        "VALUES (:name, 30) RETURNING updated_at"
                    ),
                    {"name": name},
                )
            ).scalar_one()
        async with engine.begin() as connection:
            updated = (
                await connection.execute(
                    text(
                        "UPDATE consultation_service_types SET description = 'x' "
                        "WHERE name = :name RETURNING updated_at"
                    ),
                    {"name": name},
                )
            ).scalar_one()
        assert updated > created
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM consultation_service_types WHERE name = :name"), {"name": name}
            )
        await engine.dispose()


async def _insert_service_type(url: str, start_interval_minutes: int | None) -> int | None:
    """Insert a service type with that step in a transaction that is rolled back;
    returns the step as stored."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection, connection.begin() as transaction:
            stored: int | None = await connection.scalar(
                text(
                    "INSERT INTO consultation_service_types (name, default_duration_minutes, "
                    "start_interval_minutes) VALUES (:name, 30, :minutes) "
                    "RETURNING start_interval_minutes"
                ),
                {"name": f"step-{uuid.uuid4()}", "minutes": start_interval_minutes},
            )
            await transaction.rollback()
            return stored
    finally:
        await engine.dispose()


@pytest.mark.parametrize("minutes", [None, 5, 240])
async def test_a_start_interval_of_5_to_240_minutes_is_stored(
    database_url: str, minutes: int | None
) -> None:
    assert await _insert_service_type(database_url, minutes) == minutes


@pytest.mark.parametrize("minutes", [4, 241])
async def test_a_start_interval_outside_5_to_240_minutes_is_refused(
    database_url: str, minutes: int
) -> None:
    with pytest.raises(IntegrityError) as refused:
        assert await _insert_service_type(database_url, minutes) == minutes
    assert sqlstate(refused.value) == CHECK_VIOLATION
