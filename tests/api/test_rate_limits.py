"""Per-user rate limits answer 429 with Retry-After, per user and per kind of call."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.app import create_app
from api.errors import RateLimited
from api.rate_limit import CallKind, Limit, RateLimiter
from core.settings import Settings
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory


def test_bucket_refills_at_its_rate() -> None:
    limiter = RateLimiter(read=Limit(rate=2, burst=3), write=Limit(rate=0, burst=0))
    user = uuid.uuid4()
    for _ in range(3):
        limiter.check(user, CallKind.READ, now=100.0)
    with pytest.raises(RateLimited) as refused:
        limiter.check(user, CallKind.READ, now=100.0)
    assert refused.value.headers == {"Retry-After": "1"}
    limiter.check(user, CallKind.READ, now=100.5)  # half a second buys one token at 2/s
    with pytest.raises(RateLimited):
        limiter.check(user, CallKind.READ, now=100.5)


def test_a_disabled_limit_never_refuses() -> None:
    limiter = RateLimiter(read=Limit(rate=0, burst=0), write=Limit(rate=0, burst=0))
    for _ in range(10_000):
        limiter.check(uuid.uuid4(), CallKind.WRITE, now=0.0)


def test_methods_map_to_kinds() -> None:
    assert RateLimiter.kind_of("GET") is CallKind.READ
    assert RateLimiter.kind_of("head") is CallKind.READ
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert RateLimiter.kind_of(method) is CallKind.WRITE


@pytest.fixture
async def limited_client(
    settings: Settings, unreachable_temporal: Client, clean_database: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    limited = settings.model_copy(
        update={
            "rate_limit_read_per_second": 0.01,
            "rate_limit_read_burst": 3,
            "rate_limit_write_per_second": 0.01,
            "rate_limit_write_burst": 1,
        }
    )
    application: FastAPI = create_app(limited, temporal=unreachable_temporal)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def test_api_answers_429_with_retry_after(
    limited_client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    alice = tokens.headers("learner")
    for _ in range(3):
        assert (await limited_client.get("/v1/service-types", headers=alice)).status_code == 200
    refused = await limited_client.get("/v1/service-types", headers=alice)
    body = assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert body["retry_after_seconds"] == int(refused.headers["retry-after"])

    bob = tokens.headers("learner")  # another user has a bucket of their own
    assert (await limited_client.get("/v1/service-types", headers=bob)).status_code == 200


async def test_reads_and_writes_have_separate_buckets(
    limited_client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    operator = tokens.headers("operator", sub=uuid.uuid4())
    body = {"name": "Rate limited", "default_duration_minutes": 30}
    first = await limited_client.post("/v1/service-types", json=body, headers=operator)
    assert first.status_code == 201
    second = await limited_client.post(
        "/v1/service-types", json={**body, "name": "Second"}, headers=operator
    )
    assert_problem(second, 429)
    assert (await limited_client.get("/v1/service-types", headers=operator)).status_code == 200


async def test_unauthenticated_calls_are_refused_before_spending_a_token(
    limited_client: httpx.AsyncClient,
) -> None:
    for _ in range(5):
        assert_problem(await limited_client.get("/v1/service-types"), 401)
