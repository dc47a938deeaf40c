"""GET /v1/events: every event exactly once, resumable, never overtaking an open transaction."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.e2e.support import wait_until
from tests.events.helpers import append_events, insert_event
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

URL = "/v1/events"


async def _page(client: httpx.AsyncClient, tokens: TokenFactory, **params: Any) -> dict[str, Any]:
    response = await client.get(URL, params=params, headers=tokens.headers("events:read"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# Every transaction in the PostgreSQL cluster, whatever its database, holds the feed's
# horizon back while it runs (transaction ids are cluster-wide); on a shared server
# another suite's long transactions can delay events for a while, never lose them.
HORIZON_WAIT = 120.0


async def _read(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    expected: int,
    after: str | None = None,
    limit: int = 3,
) -> tuple[list[dict[str, Any]], str]:
    """Follow the cursor until ``expected`` events came; returns them and the cursor."""
    items: list[dict[str, Any]] = []
    async with asyncio.timeout(HORIZON_WAIT):
        while True:
            params: dict[str, Any] = {"limit": limit}
            if after is not None:
                params["after"] = after
            page = await _page(client, tokens, **params)
            assert len(page["items"]) <= limit
            items += page["items"]
            after = page["next_cursor"]
            if len(items) >= expected:
                assert after is not None
                return items, after
            if not page["has_more"]:
                await asyncio.sleep(0.05)


async def test_pages_return_every_event_once_and_resume_from_the_cursor(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    request = uuid.uuid4()
    written = await append_events(session_factory, *[("consultation.requested", request)] * 7)
    items, cursor = await _read(client, tokens, expected=7)
    assert [item["id"] for item in items] == [str(event.id) for event in written]

    # Up to date: the same cursor gives nothing, and keeps being valid.
    empty = await _page(client, tokens, after=cursor)
    assert empty == {"items": [], "next_cursor": cursor, "has_more": False}

    later = await append_events(
        session_factory, ("session.scheduled", request), ("session.reminder", request)
    )
    resumed, cursor = await _read(client, tokens, expected=2, after=cursor)
    assert [item["id"] for item in resumed] == [str(event.id) for event in later]
    assert (await _page(client, tokens, after=cursor))["items"] == []


async def test_an_item_is_the_event_envelope(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    request, session_id = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as connection:
        event = await insert_event(
            connection, "session.scheduled", request, {"consultant_id": "c-1", "attempt": 1}
        )
        await connection.execute(
            text("UPDATE domain_events SET scheduled_session_id = :s WHERE id = :id"),
            {"s": session_id, "id": event.id},
        )
    [item], _ = await _read(client, tokens, expected=1)
    assert item["id"] == str(event.id)
    assert item["type"] == "session.scheduled"
    assert item["schema_version"] == 1
    assert item["occurred_at"]
    assert item["data"] == {
        "consultant_id": "c-1",
        "attempt": 1,
        "consultation_request_id": str(request),
        "scheduled_session_id": str(session_id),
    }


async def test_type_filter(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    written = await append_events(
        session_factory,
        ("consultation.requested", None),
        ("session.scheduled", None),
        ("session.cancelled", None),
        ("session.scheduled", None),
    )
    await _read(client, tokens, expected=len(written))  # all settled
    response = await client.get(
        URL,
        params=[("type", "session.scheduled"), ("type", "session.cancelled")],
        headers=tokens.headers("operator"),
    )
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [
        str(event.id) for event in written[1:]
    ]


async def test_an_open_transaction_holding_a_smaller_sequence_holds_back_later_events(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with engine.connect() as open_connection:
        open_transaction = await open_connection.begin()
        held = await insert_event(open_connection, "consultation.requested")
        [committed] = await append_events(session_factory, ("consultation.assigned", None))
        assert held.sequence < committed.sequence

        # The committed event must wait: serving it now would move the cursor past
        # `held`, which commits later with the smaller sequence.
        first = await _page(client, tokens)
        assert first["items"] == []

        await open_transaction.commit()
    second, _ = await _read(client, tokens, expected=2, after=first["next_cursor"])
    assert [item["id"] for item in second] == [str(held.id), str(committed.id)]


async def test_a_later_commit_with_a_smaller_sequence_is_served_after_the_cursor(
    client: httpx.AsyncClient, tokens: TokenFactory, engine: AsyncEngine
) -> None:
    """The interleaving that defeats a sequence cursor even with the xmin filter.

    A takes its transaction id first, B inserts an event (smaller sequence), A inserts
    one (larger sequence) and commits while B is open. A's event is final and served;
    B's, committed afterwards, must still come after the cursor handed out then.
    """
    async with engine.connect() as a, engine.connect() as b:
        transaction_a = await a.begin()
        await a.execute(text("SELECT pg_current_xact_id()"))  # A's id is now the lower one
        transaction_b = await b.begin()
        from_b = await insert_event(b, "consultation.requested")
        from_a = await insert_event(a, "consultation.assigned")
        assert from_b.sequence < from_a.sequence
        assert from_a.transaction_id < from_b.transaction_id
        await transaction_a.commit()

        first, cursor = await _read(client, tokens, expected=1)
        assert [item["id"] for item in first] == [str(from_a.id)]

        await transaction_b.commit()
    second, _ = await _read(client, tokens, expected=1, after=cursor)
    assert [item["id"] for item in second] == [str(from_b.id)]


def _forged(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        _forged({"t": -1, "s": 0}),
        _forged({"t": True, "s": 0}),
        _forged({"t": "1", "s": 0}),
        _forged({"t": 2**70, "s": 0}),
        _forged({"id": 1}),
        _forged([1, 2]),
    ],
)
async def test_a_cursor_this_api_did_not_issue_is_400(
    client: httpx.AsyncClient, tokens: TokenFactory, cursor: str
) -> None:
    response = await client.get(URL, params={"after": cursor}, headers=tokens.headers("operator"))
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "params", [{"type": "consultation.exploded"}, {"limit": 0}, {"limit": 10_000}]
)
async def test_bad_parameters_are_422(
    client: httpx.AsyncClient, tokens: TokenFactory, params: dict[str, Any]
) -> None:
    response = await client.get(URL, params=params, headers=tokens.headers("operator"))
    assert_problem(response, 422)


async def test_who_may_read_the_feed(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    assert_problem(await client.get(URL), 401)
    for role in ("learner", "consultant"):
        assert_problem(await client.get(URL, headers=tokens.headers(role)), 403)
    for role in ("operator", "events:read"):
        assert (await client.get(URL, headers=tokens.headers(role))).status_code == 200


async def test_events_read_grants_nothing_else(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    reader = tokens.headers("events:read")
    some_id = uuid.uuid4()
    for method, path in [
        ("GET", "/v1/webhook-subscriptions"),
        ("POST", "/v1/webhook-subscriptions"),
        ("GET", f"/v1/webhook-subscriptions/{some_id}/deliveries"),
        ("POST", f"/v1/webhook-deliveries/{some_id}/redeliver"),
        ("POST", "/v1/service-types"),
    ]:
        response = await client.request(method, path, headers=reader, json={})
        assert_problem(response, 403)


def _gauge(metrics: str, name: str) -> float:
    (value,) = [line.split()[1] for line in metrics.splitlines() if line.startswith(name + " ")]
    return float(value)


async def test_the_feed_lag_is_a_metric(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with engine.connect() as open_connection:
        open_transaction = await open_connection.begin()
        await insert_event(open_connection, "consultation.requested")
        await append_events(session_factory, ("consultation.assigned", None))
        held_back = (await client.get("/metrics")).text
        await open_transaction.commit()

    assert _gauge(held_back, "booking_event_feed_lag_seconds") > 0
    assert _gauge(held_back, "booking_event_feed_oldest_open_transaction_seconds") > 0

    async def caught_up() -> str:
        return (await client.get("/metrics")).text

    settled = await wait_until(
        caught_up, lambda text: _gauge(text, "booking_event_feed_lag_seconds") == 0
    )
    assert _gauge(settled, "booking_event_feed_oldest_open_transaction_seconds") == 0
