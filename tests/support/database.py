"""Test databases: a throwaway database on a given server, migrated to head."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

import db.models  # noqa: F401  (the tables, on the metadata)
from db.base import Base

REPO_ROOT = Path(__file__).resolve().parents[2]

# Every table of the schema: one a new feature adds is emptied between tests too.
TABLES = tuple(table.name for table in Base.metadata.sorted_tables)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_scratch_database(server_url: str, prefix: str = "booking_test") -> str:
    """Create a uniquely named database next to ``server_url``'s; return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    admin_url = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def alembic_config(url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def truncate_all_sql() -> str:
    return f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"
