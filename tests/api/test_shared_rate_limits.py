"""One user's rate limit holds across API processes: two apps over one database share
the user's bucket (``BOOKING_RATE_LIMIT_SCOPE=global``), each keeping its own in front."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from api.shared_rate_limit import sweep_once
from core.settings import RateLimitScope, Settings
from core.vocabulary import CallKind
from db import rate_limits
from db.models import RateLimitBucket
from tests.e2e.support import wait_until
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

RATE = 1.0  # per second
BURST = 5
READS = "/v1/service-types"


def _limited(settings: Settings, scope: RateLimitScope, **more: object) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit_scope": scope,
            "rate_limit_read_per_second": RATE,
            "rate_limit_read_burst": BURST,
            "rate_limit_write_per_second": RATE,
            "rate_limit_write_burst": BURST,
            **more,
        }
    )


async def _clients(
    stack: AsyncExitStack, settings: Settings, temporal: Client, count: int
) -> list[httpx.AsyncClient]:
    """``count`` API apps, each with its own engine, buckets and lifespan: as many
    API processes over one database."""
    clients = []
    for number in range(count):
        application: FastAPI = create_app(settings, temporal=temporal)
        await stack.enter_async_context(application.router.lifespan_context(application))
        transport = httpx.ASGITransport(app=application)
        clients.append(
            await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=f"http://api-{number}")
            )
        )
    return clients


@pytest.fixture
async def two_global_apps(
    settings: Settings, unreachable_temporal: Client, clean_database: AsyncEngine
) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        yield await _clients(
            stack, _limited(settings, RateLimitScope.GLOBAL), unreachable_temporal, 2
        )


def _allowed(elapsed: float) -> int:
    """At most the burst plus what the rate refilled meanwhile."""
    return math.floor(BURST + RATE * elapsed)


def _assert_refusals(responses: Sequence[httpx.Response]) -> None:
    for response in responses:
        if response.status_code == 429:
            body = assert_problem(response, 429)
            assert int(response.headers["retry-after"]) >= 1
            assert body["retry_after_seconds"] == int(response.headers["retry-after"])
        else:
            assert response.status_code == 200, response.text


async def test_two_apps_share_one_users_budget(
    two_global_apps: list[httpx.AsyncClient], tokens: TokenFactory
) -> None:
    alice = tokens.headers("learner")
    began = time.monotonic()
    responses = [await two_global_apps[n % 2].get(READS, headers=alice) for n in range(4 * BURST)]
    elapsed = time.monotonic() - began

    granted = sum(response.status_code == 200 for response in responses)
    assert BURST <= granted <= _allowed(elapsed), (granted, elapsed)
    # The burst went to both apps: neither bucket alone decided.
    assert {responses[0].status_code, responses[1].status_code} == {200}
    _assert_refusals(responses)

    bob = tokens.headers("learner")  # another user has a budget of their own
    assert (await two_global_apps[1].get(READS, headers=bob)).status_code == 200


async def test_concurrent_requests_through_both_apps_stay_within_the_budget(
    two_global_apps: list[httpx.AsyncClient], tokens: TokenFactory
) -> None:
    operator = tokens.headers("operator")
    began = time.monotonic()
    responses = await asyncio.gather(
        *(two_global_apps[n % 2].get(READS, headers=operator) for n in range(6 * BURST))
    )
    elapsed = time.monotonic() - began

    granted = sum(response.status_code == 200 for response in responses)
    assert BURST <= granted <= _allowed(elapsed), (granted, elapsed)
    _assert_refusals(responses)


async def test_reads_and_writes_are_shared_separately(
    two_global_apps: list[httpx.AsyncClient], tokens: TokenFactory
) -> None:
    operator = tokens.headers("operator", sub=uuid.uuid4())
    for n in range(BURST):
        created = await two_global_apps[n % 2].post(
            READS, json={"name": f"Shared {n}", "default_duration_minutes": 30}, headers=operator
        )
        assert created.status_code == 201, created.text
    refused = await two_global_apps[1].post(
        READS, json={"name": "One too many", "default_duration_minutes": 30}, headers=operator
    )
    assert_problem(refused, 429)
    assert (await two_global_apps[0].get(READS, headers=operator)).status_code == 200


async def test_per_process_scope_gives_each_app_a_budget_of_its_own(
    settings: Settings,
    unreachable_temporal: Client,
    clean_database: AsyncEngine,
    tokens: TokenFactory,
) -> None:
    """What the shared buckets prevent: per process, two apps grant twice the burst."""
    alice = tokens.headers("learner")
    async with AsyncExitStack() as stack:
        apps = await _clients(
            stack, _limited(settings, RateLimitScope.PROCESS), unreachable_temporal, 2
        )
        began = time.monotonic()
        responses = [await apps[n % 2].get(READS, headers=alice) for n in range(4 * BURST)]
        elapsed = time.monotonic() - began
    granted = sum(response.status_code == 200 for response in responses)
    assert granted > _allowed(elapsed), (granted, elapsed)
    async with clean_database.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(RateLimitBucket)) == 0


async def test_a_clearly_exceeded_local_bucket_refuses_without_the_database(
    settings: Settings,
    unreachable_temporal: Client,
    clean_database: AsyncEngine,
    tokens: TokenFactory,
) -> None:
    """The process's own bucket is the first line: past it, no shared statement runs
    (here the shared bucket has been emptied behind the app's back, and the answer is
    still this process's own 429)."""
    user = uuid.uuid4()
    headers = tokens.headers("learner", sub=user)
    async with AsyncExitStack() as stack:
        (api,) = await _clients(
            stack, _limited(settings, RateLimitScope.GLOBAL), unreachable_temporal, 1
        )
        for _ in range(BURST):
            assert (await api.get(READS, headers=headers)).status_code == 200
        async with clean_database.begin() as connection:
            await connection.execute(text("DELETE FROM rate_limit_buckets"))
        assert_problem(await api.get(READS, headers=headers), 429)
        metrics = (await api.get("/metrics")).text
    async with clean_database.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(RateLimitBucket)) == 0
    assert 'booking_rate_limit_refusals_total{decided_by="process",kind="read"} 1.0' in metrics


# --- the statement and the sweep -------------------------------------------------------


async def _spend(engine: AsyncEngine, user: uuid.UUID, interval: timedelta, burst: int) -> bool:
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        return await rate_limits.spend(
            connection, user_id=user, kind=CallKind.READ, interval=interval, burst=burst
        )


async def test_a_shared_bucket_refills_at_its_rate(clean_database: AsyncEngine) -> None:
    user, interval = uuid.uuid4(), timedelta(milliseconds=500)
    assert [await _spend(clean_database, user, interval, 2) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    await asyncio.sleep(0.55)  # one interval buys one request
    assert [await _spend(clean_database, user, interval, 2) for _ in range(2)] == [True, False]


async def test_the_sweep_deletes_full_buckets_only(
    clean_database: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    filled, busy = uuid.uuid4(), uuid.uuid4()
    assert await _spend(clean_database, filled, timedelta(milliseconds=1), 5)
    assert await _spend(clean_database, busy, timedelta(hours=1), 5)
    await asyncio.sleep(0.01)

    assert await sweep_once(session_factory) == 1
    async with clean_database.connect() as connection:
        left = (await connection.execute(select(RateLimitBucket.user_id))).scalars().all()
    assert left == [busy]


async def test_one_process_sweeps_at_a_time(
    clean_database: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    assert await _spend(clean_database, uuid.uuid4(), timedelta(milliseconds=1), 5)
    await asyncio.sleep(0.01)
    async with session_factory() as sweeping, sweeping.begin():
        assert await rate_limits.sweep_full_buckets(sweeping, batch_size=10) == 1
        async with session_factory() as other, other.begin():
            assert await rate_limits.sweep_full_buckets(other, batch_size=10) is None


async def test_the_api_sweeps_what_has_filled_up(
    settings: Settings,
    unreachable_temporal: Client,
    clean_database: AsyncEngine,
    tokens: TokenFactory,
) -> None:
    """Rows do not grow without bound: a running API deletes the buckets once they
    have filled up again (a second after one request at 1/s), not before."""
    quick = _limited(
        settings, RateLimitScope.GLOBAL, rate_limit_sweep_interval=timedelta(milliseconds=50)
    )

    async def buckets() -> int:
        async with clean_database.connect() as connection:
            return await connection.scalar(select(func.count()).select_from(RateLimitBucket)) or 0

    async with AsyncExitStack() as stack:
        (api,) = await _clients(stack, quick, unreachable_temporal, 1)
        for _ in range(3):
            assert (await api.get(READS, headers=tokens.headers("learner"))).status_code == 200
        assert await buckets() == 3
        await wait_until(buckets, lambda count: count == 0, within=5, what="buckets swept")


async def test_a_lost_bucket_connection_is_replaced_within_the_request(
    settings: Settings,
    unreachable_temporal: Client,
    clean_database: AsyncEngine,
    tokens: TokenFactory,
) -> None:
    """The buckets' pool skips the pre-ping (it would double the round trips): a
    connection the server has dropped fails the statement, which is retried once on a
    fresh connection, so the request never sees it."""
    headers = tokens.headers("learner")
    async with AsyncExitStack() as stack:
        (api,) = await _clients(
            stack, _limited(settings, RateLimitScope.GLOBAL), unreachable_temporal, 1
        )
        assert (await api.get(READS, headers=headers)).status_code == 200
        async with clean_database.connect() as connection:
            ended = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'booking-api-rate-limits'"
                )
            )
        assert ended == 1
        assert (await api.get(READS, headers=headers)).status_code == 200
    async with clean_database.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(RateLimitBucket)) == 1
