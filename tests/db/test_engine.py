"""Every connection of the API and the worker is bounded on the server: a statement
that runs (or waits for a lock) too long is cancelled, and a transaction left idle
is ended, so neither can hold locks or hold back the event feed indefinitely. A
pooled connection is tested with one round trip before it is lent out, and one the
server ended is replaced then, before a request meets it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.app import create_app
from core.settings import Settings
from db.engine import PING, create_engine
from db.errors import sqlstate
from tests.e2e.support import wait_until
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

QUERY_CANCELED = "57014"
SHORT = timedelta(milliseconds=300)


@pytest.fixture
async def bounded(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(
        settings.model_copy(
            update={
                "database_statement_timeout": SHORT,
                "database_idle_in_transaction_timeout": SHORT,
            }
        )
    )
    yield engine
    await engine.dispose()


async def _backend_gone(observer: AsyncEngine, pid: int, *, what: str, every: float) -> None:
    """Wait until the server no longer lists backend ``pid``."""

    async def gone() -> bool:
        async with observer.connect() as connection:
            found = await connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
        return bool(found == 0)

    await wait_until(gone, bool, what=what, every=every)


async def test_the_default_bounds_are_set_on_each_connection(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            statement = await connection.scalar(text("SHOW statement_timeout"))
            idle = await connection.scalar(text("SHOW idle_in_transaction_session_timeout"))
    finally:
        await engine.dispose()
    assert (statement, idle) == ("30s", "1min")


async def test_a_statement_over_its_timeout_is_cancelled(bounded: AsyncEngine) -> None:
    async with bounded.connect() as connection:
        with pytest.raises(DBAPIError) as cancelled:
            await connection.execute(text("SELECT pg_sleep(5)"))
    assert sqlstate(cancelled.value) == QUERY_CANCELED


async def test_a_transaction_left_idle_is_ended_by_the_server(
    bounded: AsyncEngine, clean_database: AsyncEngine
) -> None:
    async with bounded.connect() as connection:
        await connection.begin()
        pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        await _backend_gone(clean_database, pid, what="the idle transaction ended", every=0.1)
        with pytest.raises(DBAPIError):
            await connection.execute(text("SELECT 1"))


async def test_a_statement_cancelled_by_its_timeout_answers_503(
    settings: Settings,
    clean_database: AsyncEngine,
    unreachable_temporal: Client,
    tokens: TokenFactory,
) -> None:
    app = create_app(
        settings.model_copy(update={"database_statement_timeout": SHORT}),
        temporal=unreachable_temporal,
    )
    async with app.router.lifespan_context(app), clean_database.connect() as blocker:
        # Another transaction holds the table: the API's read waits, then is cancelled.
        await blocker.begin()
        await blocker.execute(
            text("LOCK TABLE consultation_service_types IN ACCESS EXCLUSIVE MODE")
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/v1/service-types", headers=tokens.headers("learner"))
        await blocker.rollback()
    problem = assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"
    assert "database" in problem["detail"]


def _one_connection(settings: Settings, *, pre_ping: bool = True) -> AsyncEngine:
    return create_engine(
        settings.model_copy(
            update={
                "database_pool_size": 1,
                "database_max_overflow": 0,
                "database_pre_ping": pre_ping,
            }
        )
    )


async def _backend_of(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        pid: int = await connection.scalar(text("SELECT pg_backend_pid()"))
    return pid


async def _end_backend(observer: AsyncEngine, pid: int) -> None:
    async with observer.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await _backend_gone(observer, pid, what="the backend ended", every=0.05)


async def test_the_ping_is_one_round_trip_outside_any_transaction(settings: Settings) -> None:
    engine = _one_connection(settings)
    sent: list[str] = []
    try:
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            driver.add_query_logger(lambda query: sent.append(query.query))
        sent.clear()
        async with engine.begin() as connection:
            await connection.execute(text("SELECT 2"))
    finally:
        await engine.dispose()
    # The simple-protocol statements the connection sent; SQLAlchemy's own pre-ping
    # was BEGIN, an empty statement and ROLLBACK before the transaction's BEGIN.
    assert sent == [PING, "BEGIN;", "COMMIT;"]


async def test_a_connection_the_server_ended_is_replaced_before_it_is_lent(
    settings: Settings, clean_database: AsyncEngine
) -> None:
    engine = _one_connection(settings)
    try:
        ended = await _backend_of(engine)
        await _end_backend(clean_database, ended)
        assert await _backend_of(engine) != ended
    finally:
        await engine.dispose()


async def test_without_the_ping_the_first_use_of_an_ended_connection_fails(
    settings: Settings, clean_database: AsyncEngine
) -> None:
    engine = _one_connection(settings, pre_ping=False)
    try:
        ended = await _backend_of(engine)
        await _end_backend(clean_database, ended)
        with pytest.raises(DBAPIError):
            await _backend_of(engine)
        # The pool noticed: the next use gets a new connection.
        assert await _backend_of(engine) != ended
    finally:
        await engine.dispose()
