"""The embedded PostgreSQL server: fresh start, reuse of its data, failure modes."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import asyncpg
import pytest

from booking.devstack.ports import PortInUseError, free_port
from booking.devstack.postgres import EmbeddedPostgres


async def test_fresh_server_accepts_connections_and_has_btree_gist(service_dir: Path) -> None:
    started = time.monotonic()
    with EmbeddedPostgres(service_dir / "pg", free_port(), ephemeral=True) as server:
        assert time.monotonic() - started < 20, "a fresh test database must start quickly"
        assert server.url == f"postgresql+asyncpg://postgres@127.0.0.1:{server.port}/booking"
        connection = await asyncpg.connect(server.dsn)
        try:
            assert await connection.fetchval("SELECT current_database()") == "booking"
            await connection.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            assert await connection.fetchval(
                "SELECT count(*) FROM pg_extension WHERE extname = 'btree_gist'"
            )
            assert await connection.fetchval("SHOW fsync") == "off"
            assert await connection.fetchval("SHOW listen_addresses") == "127.0.0.1"
        finally:
            await connection.close()
    assert not server.running


async def test_restart_on_the_same_data_dir_keeps_the_data(service_dir: Path) -> None:
    data_dir = service_dir / "pg"
    with EmbeddedPostgres(data_dir, free_port(), database="kept") as server:
        connection = await asyncpg.connect(server.dsn)
        await connection.execute("CREATE TABLE note (body text); INSERT INTO note VALUES ('hi')")
        await connection.close()
    initialised_at = (data_dir / "PG_VERSION").stat().st_mtime_ns

    with EmbeddedPostgres(data_dir, free_port(), database="kept") as server:
        connection = await asyncpg.connect(server.dsn)
        assert await connection.fetchval("SELECT body FROM note") == "hi"
        await connection.close()
    assert (data_dir / "PG_VERSION").stat().st_mtime_ns == initialised_at, "no second initdb"


def test_busy_port_is_a_clear_error(service_dir: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        server = EmbeddedPostgres(service_dir / "pg", port, port_env_var="BOOKING_POSTGRES_PORT")
        with pytest.raises(PortInUseError, match=rf"PostgreSQL.*127\.0\.0\.1:{port}") as caught:
            server.start()
    assert "BOOKING_POSTGRES_PORT" in str(caught.value)
    assert not server.running


def test_stale_postmaster_pid_from_a_killed_run_is_ignored(service_dir: Path) -> None:
    data_dir = service_dir / "pg"
    with EmbeddedPostgres(data_dir, free_port(), ephemeral=True):
        pass
    # A killed server leaves its lock file; by the next start its pid may belong to
    # an unrelated live process (here: this test), which PostgreSQL alone refuses.
    (data_dir / "postmaster.pid").write_text(f"{os.getpid()}\n{data_dir}\n")
    with EmbeddedPostgres(data_dir, free_port(), ephemeral=True) as server:
        assert server.running
        assert server.psql("SELECT 1").strip() == "1"


def test_invalid_database_name_is_rejected(service_dir: Path) -> None:
    with pytest.raises(ValueError, match="invalid database name"):
        EmbeddedPostgres(service_dir / "pg", free_port(), database='x"; DROP')
