"""No log line carries a bound parameter: a learner's details text or a webhook
signing secret in a failing statement stays out of every record, its message and its
traceback alike."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import api.routes.webhook_subscriptions
from core.settings import Settings
from db.engine import create_engine
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

DETAILS = "Confidential: my manager {} must not learn about this move"
SECRET = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ="


@pytest.fixture
def every_record(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


def _logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as a handler would write it, tracebacks included."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


@asynccontextmanager
async def refusing_inserts(engine: AsyncEngine, table: str) -> AsyncIterator[None]:
    """Every insert into ``table`` fails on the server, like a constraint would."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE FUNCTION refuse_for_the_test() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
            )
        )
        await connection.execute(
            text(
                f"CREATE TRIGGER refuse_for_the_test BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_for_the_test()"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP TRIGGER refuse_for_the_test ON {table}"))
            await connection.execute(text("DROP FUNCTION refuse_for_the_test()"))


def _leaks(logged: str, value: str) -> bool:
    """Whether any 12 characters of ``value`` in a row appear (drivers quote prefixes)."""
    return any(value[i : i + 12] in logged for i in range(len(value) - 11))


FAILING_STATEMENTS = {
    # asyncpg cannot encode the value and quotes the start of it
    "unencodable-argument": ["SELECT CAST(:value AS integer)"],
    # PostgreSQL's DETAIL: "Failing row contains (<value>, -1, null)"
    "check-violation": ["INSERT INTO scratch (a, b) VALUES (:value, -1)"],
    # PostgreSQL's DETAIL: "Key (c)=(<value>) already exists."
    "unique-violation": [
        "INSERT INTO scratch (a, b, c) VALUES ('first', 1, :value)",
        "INSERT INTO scratch (a, b, c) VALUES ('second', 1, :value)",
    ],
}


@pytest.mark.parametrize("statements", FAILING_STATEMENTS.values(), ids=FAILING_STATEMENTS.keys())
async def test_a_failing_statement_names_none_of_its_values(
    settings: Settings, every_record: pytest.LogCaptureFixture, statements: list[str]
) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(
                text("CREATE TEMP TABLE scratch (a text, b int CHECK (b > 0), c text UNIQUE)")
            )
            *succeeding, failing = statements
            for statement in succeeding:
                await connection.execute(text(statement), {"value": SECRET})
            with pytest.raises(DBAPIError) as failed:
                await connection.execute(text(failing), {"value": SECRET})
    finally:
        await engine.dispose()
    # Logged as the API's and the worker's handlers do: message and whole traceback.
    logging.getLogger("tests.db.log_hygiene").error("the statement failed", exc_info=failed.value)
    logged = _logged_text(every_record)
    assert "Traceback" in logged
    assert not _leaks(str(failed.value), SECRET)
    assert not _leaks(logged, SECRET)


@pytest.mark.usefixtures("clean_database")
async def test_a_failed_subscription_insert_logs_no_secret(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    tokens: TokenFactory,
    every_record: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api.routes.webhook_subscriptions, "generate_secret", lambda: SECRET)
    async with refusing_inserts(engine, "webhook_subscriptions"):
        response = await client.post(
            "/v1/webhook-subscriptions",
            json={"url": "https://hooks.example.com/in"},
            headers=tokens.headers("operator"),
        )
    assert_problem(response, 500)
    assert "refused by the test" in _logged_text(every_record)  # the error was logged ...
    assert not _leaks(_logged_text(every_record), SECRET)  # ... without its parameters


@pytest.mark.usefixtures("clean_database")
async def test_a_failed_submission_logs_no_details_text(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    tokens: TokenFactory,
    every_record: pytest.LogCaptureFixture,
) -> None:
    service_type = await client.post(
        "/v1/service-types",
        json={"name": f"hygiene-{uuid.uuid4()}", "default_duration_minutes": 30},
        headers=tokens.headers("operator"),
    )
    assert service_type.status_code == 201, service_type.text
    details = DETAILS.format(uuid.uuid4())
    async with refusing_inserts(engine, "consultation_request_drafts"):
        response = await client.post(
            "/v1/consultation-requests",
            json={"service_type_id": service_type.json()["id"], "details": details},
            headers=tokens.headers("learner"),
        )
    assert_problem(response, 500)
    assert "refused by the test" in _logged_text(every_record)
    assert not _leaks(_logged_text(every_record), details)
