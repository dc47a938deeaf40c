"""The dispatcher against a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

import integrations.webhooks.dispatcher as dispatcher_module
from core.settings import Settings
from core.vocabulary import DeliveryStatus
from db.models import DomainEvent, WebhookDelivery
from integrations.webhooks.dispatcher import WebhookDispatcher
from integrations.webhooks.fanout import fan_out
from integrations.webhooks.signing import generate_secret
from tests.events.conftest import DispatcherFactory
from tests.events.helpers import (
    append_events,
    create_subscription,
    deliveries,
    eventually,
    insert_event,
    running,
)
from tests.events.receiver import Received, Receiver
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

# Fan-out waits for every older transaction in the cluster; see test_event_feed.
WAIT = 120.0

SessionFactory = async_sessionmaker[AsyncSession]


def _all(
    session_factory: SessionFactory, count: int, status: DeliveryStatus
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        rows = await deliveries(session_factory)
        return len(rows) == count and all(row.status == status.value for row in rows)

    return check


def _body(received: Received) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(received.body)
    return body


async def test_delivers_a_signed_envelope(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
    engine: AsyncEngine,
) -> None:
    subscription = await create_subscription(client, tokens, receiver.url())
    request = uuid.uuid4()
    async with engine.begin() as connection:
        event = await insert_event(connection, "session.scheduled", request, {"attempt": 2})

    async with running(make_dispatcher()):
        await eventually(_all(session_factory, 1, DeliveryStatus.SUCCEEDED), WAIT)

    [received] = receiver.requests
    verified = Webhook(subscription["secret"]).verify(received.body, received.headers)
    assert verified == {
        "id": str(event.id),
        "type": "session.scheduled",
        "occurred_at": verified["occurred_at"],
        "schema_version": 1,
        "data": {
            "attempt": 2,
            "consultation_request_id": str(request),
            "scheduled_session_id": None,
        },
    }
    assert datetime.fromisoformat(verified["occurred_at"]) == event.occurred_at
    assert received.headers["webhook-id"] == str(event.id)
    assert received.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(received.body, received.headers)

    [delivery] = await deliveries(session_factory)
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 200, None)
    assert delivery.locked_until is None


async def test_filters_and_disabled_subscriptions(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
) -> None:
    await create_subscription(client, tokens, receiver.url("/all"))
    await create_subscription(
        client, tokens, receiver.url("/sessions"), event_types=["session.scheduled"]
    )
    await create_subscription(client, tokens, receiver.url("/off"), is_enabled=False)
    events = await append_events(
        session_factory, ("consultation.requested", None), ("session.scheduled", None)
    )

    async with running(make_dispatcher()):
        await eventually(_all(session_factory, 3, DeliveryStatus.SUCCEEDED), WAIT)

    by_path = defaultdict(list)
    for received in receiver.requests:
        by_path[received.path].append(received.webhook_id)
    assert sorted(by_path["/all"]) == sorted(str(event.id) for event in events)
    assert by_path["/sessions"] == [str(events[1].id)]
    assert "/off" not in by_path


def _assert_in_order_per_request(received: list[Received], events: list[DomainEvent]) -> None:
    """Per request: an event is first tried only after the previous one got a 2xx."""
    position = {str(event.id): index for index, event in enumerate(events)}
    request_of = {str(event.id): event.consultation_request_id for event in events}
    per_request: dict[object, list[Received]] = defaultdict(list)
    for item in received:
        per_request[request_of[item.webhook_id]].append(item)
    for items in per_request.values():
        expected = sorted({position[i.webhook_id] for i in items})
        current = 0
        for item in items:
            index = position[item.webhook_id]
            assert index == expected[current], "an event was tried out of order"
            if 200 <= item.answered < 300:
                current += 1
        assert current == len(expected)


async def test_a_failing_receiver_gets_every_event_once_in_order_after_recovering(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
) -> None:
    subscription = await create_subscription(client, tokens, receiver.url())
    failures_left = 7

    def flaky(path: str, headers: dict[str, str], body: bytes) -> int:
        nonlocal failures_left
        if failures_left > 0:
            failures_left -= 1
            return 500
        return 200

    receiver.respond = flaky
    first, second = uuid.uuid4(), uuid.uuid4()
    events = await append_events(
        session_factory,
        ("consultation.requested", first),
        ("consultation.requested", second),
        ("consultation.assigned", first),
        ("consultation.assigned", second),
        ("consultation.confirmation_requested", first),
        ("session.scheduled", first),
        ("consultation.rejected", second),
    )

    async with running(make_dispatcher(webhook_max_attempts=20)):
        await eventually(_all(session_factory, len(events), DeliveryStatus.SUCCEEDED), WAIT)

    received = receiver.requests
    assert sum(1 for item in received if item.answered == 500) == 7
    succeeded = Counter(item.webhook_id for item in received if item.answered == 200)
    assert succeeded == Counter(str(event.id) for event in events)  # each exactly once
    _assert_in_order_per_request(received, events)

    webhook = Webhook(subscription["secret"])
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for item in received:
        assert webhook.verify(item.body, item.headers)["id"] == item.webhook_id
        bodies[item.webhook_id].add(item.body)
    # A retry is the same message: same webhook-id, same body.
    assert all(len(variants) == 1 for variants in bodies.values())
    assert sum(row.attempts for row in await deliveries(session_factory)) == len(received)


async def test_parks_after_max_attempts_and_an_operator_redelivers(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
) -> None:
    subscription = await create_subscription(client, tokens, receiver.url())
    receiver.respond = lambda path, headers, body: 503
    request = uuid.uuid4()
    [first] = await append_events(session_factory, ("consultation.requested", request))
    dispatcher = make_dispatcher(webhook_max_attempts=3)

    async with running(dispatcher):
        await eventually(_all(session_factory, 1, DeliveryStatus.PARKED), WAIT)
    assert [item.webhook_id for item in receiver.requests] == [str(first.id)] * 3

    # A parked delivery no longer holds back the request's later events.
    receiver.respond = lambda path, headers, body: 200
    [later] = await append_events(session_factory, ("consultation.assigned", request))

    async def later_succeeded() -> bool:
        rows = {row.event_id: row for row in await deliveries(session_factory)}
        return later.id in rows and rows[later.id].status == DeliveryStatus.SUCCEEDED

    async with running(dispatcher):
        await eventually(later_succeeded, WAIT)

    operator = tokens.headers("operator")
    listing = f"/v1/webhook-subscriptions/{subscription['id']}/deliveries"
    parked = (await client.get(listing, params={"status": "parked"}, headers=operator)).json()
    [item] = parked["items"]
    assert item["event_id"] == str(first.id)
    assert item["event_type"] == "consultation.requested"
    assert (item["attempts"], item["last_status_code"]) == (3, 503)
    assert "503" in item["last_error"]

    # Newest first, one per page.
    page = (await client.get(listing, params={"limit": 1}, headers=operator)).json()
    assert [i["event_id"] for i in page["items"]] == [str(later.id)]
    page = (
        await client.get(
            listing, params={"limit": 1, "cursor": page["next_cursor"]}, headers=operator
        )
    ).json()
    assert [i["event_id"] for i in page["items"]] == [str(first.id)]
    assert page["next_cursor"] is None

    redeliver = f"/v1/webhook-deliveries/{item['id']}/redeliver"
    response = await client.post(redeliver, headers=operator)
    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
    assert_problem(await client.post(redeliver, headers=operator), 409)
    assert_problem(
        await client.post(f"/v1/webhook-deliveries/{uuid.uuid4()}/redeliver", headers=operator),
        404,
    )

    async with running(dispatcher):
        await eventually(_all(session_factory, 2, DeliveryStatus.SUCCEEDED), WAIT)
    assert [item.answered for item in receiver.requests if item.webhook_id == str(first.id)] == [
        503,
        503,
        503,
        200,
    ]


async def test_two_dispatchers_never_send_the_same_attempt(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    session_factory: SessionFactory,
    settings: Settings,
) -> None:
    await create_subscription(client, tokens, receiver.url())
    receiver.delay = 0.02  # attempts overlap in time
    requests = [uuid.uuid4() for _ in range(8)]
    event_types = ["consultation.requested", "consultation.assigned", "session.scheduled"]
    events = await append_events(
        session_factory,
        *[(event_types[n // 8 % 3], requests[n % 8]) for n in range(40)],
    )
    fast = settings.model_copy(update={"webhook_batch_size": 5})
    clients = [httpx.AsyncClient(headers={"x-dispatcher": name}) for name in ("one", "two")]
    dispatchers = [WebhookDispatcher(session_factory, fast, http=http) for http in clients]
    try:
        async with running(*dispatchers):
            await eventually(_all(session_factory, 40, DeliveryStatus.SUCCEEDED), WAIT)
    finally:
        for http in clients:
            await http.aclose()

    assert Counter(item.webhook_id for item in receiver.requests) == Counter(
        str(event.id) for event in events
    )
    assert all(row.attempts == 1 for row in await deliveries(session_factory))
    assert {item.headers["x-dispatcher"] for item in receiver.requests} == {"one", "two"}
    _assert_in_order_per_request(receiver.requests, events)


async def _one_delivery(session_factory: SessionFactory) -> WebhookDelivery:
    async def fanned_out() -> bool:
        await fan_out(session_factory)
        return len(await deliveries(session_factory)) == 1

    await eventually(fanned_out, WAIT)
    [delivery] = await deliveries(session_factory)
    return delivery


async def _abandon_claim(engine: AsyncEngine, delivery: WebhookDelivery, attempts: int) -> None:
    """What a dispatcher that died mid-attempt leaves behind: a lapsed claim."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE webhook_deliveries SET status = 'delivering', attempts = :attempts, "
                "locked_until = now() - interval '1 second' WHERE id = :id"
            ),
            {"attempts": attempts, "id": delivery.id},
        )


async def test_a_lapsed_claim_is_taken_over(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
    engine: AsyncEngine,
) -> None:
    await create_subscription(client, tokens, receiver.url())
    await append_events(session_factory, ("consultation.requested", uuid.uuid4()))
    delivery = await _one_delivery(session_factory)
    await _abandon_claim(engine, delivery, attempts=1)

    await make_dispatcher().run_once()

    [after] = await deliveries(session_factory)
    assert (after.status, after.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert len(receiver.requests) == 1


async def test_a_lapsed_claim_on_the_last_attempt_is_parked(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
    engine: AsyncEngine,
    settings: Settings,
) -> None:
    await create_subscription(client, tokens, receiver.url())
    await append_events(session_factory, ("consultation.requested", uuid.uuid4()))
    delivery = await _one_delivery(session_factory)
    await _abandon_claim(engine, delivery, attempts=settings.webhook_max_attempts)

    await make_dispatcher().run_once()

    [after] = await deliveries(session_factory)
    assert after.status == DeliveryStatus.PARKED
    assert after.last_error is not None
    assert "never recorded" in after.last_error
    assert receiver.requests == []


async def test_fan_out_never_passes_an_event_that_commits_later(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    session_factory: SessionFactory,
    engine: AsyncEngine,
) -> None:
    await create_subscription(client, tokens, receiver.url())

    async def delivered_events() -> set[uuid.UUID]:
        await fan_out(session_factory)
        return {row.event_id for row in await deliveries(session_factory)}

    async with engine.connect() as a, engine.connect() as b:
        transaction_a = await a.begin()
        await a.execute(text("SELECT pg_current_xact_id()"))
        transaction_b = await b.begin()
        from_b = await insert_event(b, "consultation.requested")
        from_a = await insert_event(a, "consultation.assigned")
        assert from_b.sequence < from_a.sequence
        await transaction_a.commit()

        async def only_a() -> bool:
            return await delivered_events() == {from_a.id}

        await eventually(only_a, WAIT)
        await transaction_b.commit()

    async def both() -> bool:
        return await delivered_events() == {from_a.id, from_b.id}

    await eventually(both, WAIT)


async def test_after_a_rotation_both_secrets_verify(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
) -> None:
    old = await create_subscription(client, tokens, receiver.url())
    response = await client.post(
        f"/v1/webhook-subscriptions/{old['id']}/rotate-secret", headers=tokens.headers("operator")
    )
    new = response.json()
    await append_events(session_factory, ("consultation.requested", None))

    async with running(make_dispatcher()):
        await eventually(_all(session_factory, 1, DeliveryStatus.SUCCEEDED), WAIT)

    [received] = receiver.requests
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    for secret in (old["secret"], new["secret"]):
        Webhook(secret).verify(received.body, received.headers)


async def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
) -> None:
    await create_subscription(client, tokens, receiver.url())
    receiver.delay = 0.5
    await append_events(session_factory, ("consultation.requested", None))
    dispatcher = make_dispatcher(
        webhook_max_attempts=1, webhook_timeout=timedelta(milliseconds=100)
    )

    async with running(dispatcher):
        await eventually(_all(session_factory, 1, DeliveryStatus.PARKED), WAIT)

    [delivery] = await deliveries(session_factory)
    assert delivery.last_status_code is None
    assert delivery.last_error is not None
    assert "0.1 s" in delivery.last_error


async def test_an_unreachable_endpoint_is_a_failed_attempt(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await create_subscription(client, tokens, f"http://127.0.0.1:{port}/hook")
    await append_events(session_factory, ("consultation.requested", None))

    async with running(make_dispatcher(webhook_max_attempts=2)):
        await eventually(_all(session_factory, 1, DeliveryStatus.PARKED), WAIT)

    [delivery] = await deliveries(session_factory)
    assert delivery.attempts == 2
    # What kind of failure, never the socket error's own text.
    assert delivery.last_error == "Could not connect to the receiver."


async def test_a_slow_receiver_does_not_hold_up_the_others(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
    session_factory: SessionFactory,
    engine: AsyncEngine,
) -> None:
    slow = await create_subscription(client, tokens, receiver.url("/slow"))
    await create_subscription(client, tokens, receiver.url("/fast"))
    receiver.path_delays["/slow"] = 1.5
    await append_events(session_factory, *[("consultation.requested", uuid.uuid4())] * 3)

    async def fanned_out() -> bool:
        await fan_out(session_factory)
        return len(await deliveries(session_factory)) == 6

    await eventually(fanned_out, WAIT)
    # The slow receiver's deliveries come first in the claim order.
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 minute' "
                "WHERE subscription_id = :id"
            ),
            {"id": slow["id"]},
        )

    def succeeded(path: str) -> int:
        return sum(1 for item in receiver.requests if item.path == path and item.answered == 200)

    async def fast_done() -> bool:
        return succeeded("/fast") == 3

    async with running(make_dispatcher(webhook_batch_size=4)):
        await eventually(fast_done, 1.0)
        assert succeeded("/slow") == 0  # all three still in flight
        await eventually(_all(session_factory, 6, DeliveryStatus.SUCCEEDED), WAIT)


async def test_events_nobody_subscribed_to_do_not_keep_the_dispatcher_spinning(
    session_factory: async_sessionmaker[AsyncSession],
    make_dispatcher: DispatcherFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A steady stream of events with no subscription: the dispatcher fans them out
    once per poll interval, not in rounds back to back for as long as events come."""
    rounds = 0

    async def counted_fan_out(sessions: async_sessionmaker[AsyncSession]) -> int:
        nonlocal rounds
        rounds += 1
        return await fan_out(sessions)

    monkeypatch.setattr(dispatcher_module, "fan_out", counted_fan_out)
    poll = timedelta(milliseconds=300)
    streamed = 0
    async with running(make_dispatcher(webhook_poll_interval=poll)):
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.2
        while loop.time() < until:
            await append_events(session_factory, ("consultation.requested", uuid.uuid4()))
            streamed += 1
    assert streamed >= 50
    # 1.2 s at one round per 300 ms, give or take the first and the last.
    assert 2 <= rounds <= 6, rounds
    async with session_factory() as session:
        assert await session.scalar(text("SELECT count(*) FROM webhook_deliveries")) == 0
