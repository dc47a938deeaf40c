"""The audit trail: every change to the catalogue and the configuration leaves one row
(actor, action, target, time, fields before/after, no secrets) in the transaction of
the change; operators read it at ``GET /v1/audit-log``.

``SCENARIOS`` names every mutating route under the catalogue and configuration
prefixes and drives it once; ``test_every_mutating_route_is_covered`` walks the app's
routes, so a new POST/PUT/PATCH/DELETE there (calendars, say) fails until it has a
scenario here, and its scenario fails until the route writes its audit row.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.vocabulary import AuditAction, AuditActorKind, AuditTarget, DeliveryStatus
from db.models import AuditLogEntry, DomainEvent, WebhookDelivery, WebhookSubscription
from integrations.webhooks.signing import generate_secret
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

SessionFactory = async_sessionmaker[AsyncSession]

AUDITED_PREFIXES = (
    "/v1/service-types",
    "/v1/consultants",  # profiles, availability, calendar feeds, linked calendars
    "/v1/learners",  # calendar feeds
    "/v1/webhook-subscriptions",
    "/v1/webhook-deliveries",
)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Catalogue:
    """The API as an operator (and one consultant) uses it, plus direct rows."""

    http: httpx.AsyncClient
    tokens: TokenFactory
    sessions: SessionFactory
    operator_id: uuid.UUID

    @property
    def operator(self) -> dict[str, str]:
        return self.tokens.headers("operator", sub=self.operator_id)

    async def call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        response = await self.http.request(method, path, json=json, headers=self.operator)
        assert response.status_code < 300, response.text
        return response

    async def service_type(self) -> str:
        body = {"name": f"Audit {uuid.uuid4()}", "default_duration_minutes": 30}
        return str((await self.call("POST", "/v1/service-types", body)).json()["id"])

    async def consultant(self) -> uuid.UUID:
        consultant = uuid.uuid4()
        await self.call("PUT", f"/v1/consultants/{consultant}", {"display_name": "Ada"})
        return consultant

    async def slot(self, consultant: uuid.UUID) -> str:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
        body = {
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=1)).isoformat(),
        }
        created = await self.call("POST", f"/v1/consultants/{consultant}/availability", body)
        return str(created.json()["items"][0]["id"])

    async def subscription(self) -> str:
        body = {"url": "https://hooks.example.test/audit"}
        return str((await self.call("POST", "/v1/webhook-subscriptions", body)).json()["id"])

    async def parked_delivery(self) -> uuid.UUID:
        async with self.sessions() as session, session.begin():
            subscription = WebhookSubscription(
                url="https://hooks.example.test/parked", secret=generate_secret()
            )
            event = DomainEvent(
                event_type="consultation.requested",
                dedupe_key=f"audit:{uuid.uuid4()}",
                consultation_request_id=uuid.uuid4(),
            )
            session.add_all([subscription, event])
            await session.flush()
            delivery = WebhookDelivery(
                subscription_id=subscription.id,
                event_id=event.id,
                event_sequence=event.sequence,
                status=DeliveryStatus.PARKED.value,
                attempts=8,
            )
            session.add(delivery)
        return delivery.id

    async def entries(self, target_id: uuid.UUID | str) -> list[AuditLogEntry]:
        async with self.sessions() as session:
            query = (
                select(AuditLogEntry)
                .where(AuditLogEntry.target_id == uuid.UUID(str(target_id)))
                .order_by(AuditLogEntry.occurred_at, AuditLogEntry.id)
            )
            return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class Expected:
    """The one row a scenario's change must leave."""

    action: AuditAction
    target_type: AuditTarget
    target_id: uuid.UUID | str
    changes: dict[str, dict[str, Any]]  # a subset of the row's changes


Scenario = Callable[[Catalogue], Awaitable[Expected]]


async def _create_service_type(c: Catalogue) -> Expected:
    body = {"name": "Audited type", "default_duration_minutes": 45}
    created = (await c.call("POST", "/v1/service-types", body)).json()
    return Expected(
        AuditAction.SERVICE_TYPE_CREATED,
        AuditTarget.SERVICE_TYPE,
        created["id"],
        {
            "name": {"before": None, "after": "Audited type"},
            "default_duration_minutes": {"before": None, "after": 45},
        },
    )


async def _patch_service_type(c: Catalogue) -> Expected:
    service_type = await c.service_type()
    await c.call("PATCH", f"/v1/service-types/{service_type}", {"default_duration_minutes": 60})
    return Expected(
        AuditAction.SERVICE_TYPE_UPDATED,
        AuditTarget.SERVICE_TYPE,
        service_type,
        {"default_duration_minutes": {"before": 30, "after": 60}},
    )


async def _put_new_profile(c: Catalogue) -> Expected:
    consultant = uuid.uuid4()
    await c.call("PUT", f"/v1/consultants/{consultant}", {"time_zone": "Europe/Berlin"})
    return Expected(
        AuditAction.CONSULTANT_PROFILE_CREATED,
        AuditTarget.CONSULTANT_PROFILE,
        consultant,
        {"time_zone": {"before": None, "after": "Europe/Berlin"}},
    )


async def _patch_profile(c: Catalogue) -> Expected:
    consultant = await c.consultant()
    await c.call("PATCH", f"/v1/consultants/{consultant}", {"bio": "Twenty years of code"})
    return Expected(
        AuditAction.CONSULTANT_PROFILE_UPDATED,
        AuditTarget.CONSULTANT_PROFILE,
        consultant,
        {"bio": {"before": None, "after": "Twenty years of code"}},
    )


async def _put_service_limit(c: Catalogue) -> Expected:
    consultant, service_type = await c.consultant(), await c.service_type()
    path = f"/v1/consultants/{consultant}/service-limits/{service_type}"
    await c.call("PUT", path, {"max_sessions_per_day": 2})
    return Expected(
        AuditAction.CONSULTANT_SERVICE_LIMIT_SET,
        AuditTarget.CONSULTANT_PROFILE,
        consultant,
        {"max_sessions_per_day": {"before": None, "after": 2}},
    )


async def _delete_service_limit(c: Catalogue) -> Expected:
    consultant, service_type = await c.consultant(), await c.service_type()
    path = f"/v1/consultants/{consultant}/service-limits/{service_type}"
    await c.call("PUT", path, {"max_sessions_per_week": 5})
    await c.call("DELETE", path)
    return Expected(
        AuditAction.CONSULTANT_SERVICE_LIMIT_REMOVED,
        AuditTarget.CONSULTANT_PROFILE,
        consultant,
        {"max_sessions_per_week": {"before": 5, "after": None}},
    )


async def _publish(c: Catalogue) -> Expected:
    consultant = await c.consultant()
    slot = await c.slot(consultant)
    (published,) = [
        e for e in await c.entries(consultant) if e.action == AuditAction.AVAILABILITY_PUBLISHED
    ]
    assert published.changes["slots"]["before"] is None
    assert [s["id"] for s in published.changes["slots"]["after"]] == [slot]
    return Expected(
        AuditAction.AVAILABILITY_PUBLISHED,
        AuditTarget.CONSULTANT_AVAILABILITY,
        consultant,
        {},  # the slots it published, checked above
    )


async def _change_slot(c: Catalogue) -> Expected:
    consultant = await c.consultant()
    slot = await c.slot(consultant)
    path = f"/v1/consultants/{consultant}/availability/{slot}"
    await c.call("PATCH", path, {"status": "unavailable"})
    return Expected(
        AuditAction.AVAILABILITY_SLOT_CHANGED,
        AuditTarget.AVAILABILITY_SLOT,
        slot,
        {"status": {"before": "available", "after": "unavailable"}},
    )


async def _delete_slot(c: Catalogue) -> Expected:
    consultant = await c.consultant()
    slot = await c.slot(consultant)
    await c.call("DELETE", f"/v1/consultants/{consultant}/availability/{slot}")
    return Expected(
        AuditAction.AVAILABILITY_SLOT_DELETED,
        AuditTarget.AVAILABILITY_SLOT,
        slot,
        {"status": {"before": "available", "after": None}},
    )


async def _create_subscription(c: Catalogue) -> Expected:
    body = {"url": "https://hooks.example.test/new", "event_types": ["session.scheduled"]}
    created = (await c.call("POST", "/v1/webhook-subscriptions", body)).json()
    return Expected(
        AuditAction.WEBHOOK_SUBSCRIPTION_CREATED,
        AuditTarget.WEBHOOK_SUBSCRIPTION,
        created["id"],
        {
            "url": {"before": None, "after": "https://hooks.example.test/new"},
            "event_types": {"before": None, "after": ["session.scheduled"]},
        },
    )


async def _patch_subscription(c: Catalogue) -> Expected:
    subscription = await c.subscription()
    await c.call("PATCH", f"/v1/webhook-subscriptions/{subscription}", {"is_enabled": False})
    return Expected(
        AuditAction.WEBHOOK_SUBSCRIPTION_UPDATED,
        AuditTarget.WEBHOOK_SUBSCRIPTION,
        subscription,
        {"is_enabled": {"before": True, "after": False}},
    )


async def _delete_subscription(c: Catalogue) -> Expected:
    subscription = await c.subscription()
    await c.call("DELETE", f"/v1/webhook-subscriptions/{subscription}")
    return Expected(
        AuditAction.WEBHOOK_SUBSCRIPTION_DELETED,
        AuditTarget.WEBHOOK_SUBSCRIPTION,
        subscription,
        {"url": {"before": "https://hooks.example.test/audit", "after": None}},
    )


async def _rotate_secret(c: Catalogue) -> Expected:
    subscription = await c.subscription()
    rotated = (
        await c.call("POST", f"/v1/webhook-subscriptions/{subscription}/rotate-secret")
    ).json()
    return Expected(
        AuditAction.WEBHOOK_SUBSCRIPTION_SECRET_ROTATED,
        AuditTarget.WEBHOOK_SUBSCRIPTION,
        subscription,
        {
            "previous_secret_expires_at": {
                "before": None,
                "after": datetime.fromisoformat(rotated["previous_secret_expires_at"]).isoformat(),
            }
        },
    )


async def _redeliver(c: Catalogue) -> Expected:
    delivery = await c.parked_delivery()
    await c.call("POST", f"/v1/webhook-deliveries/{delivery}/redeliver")
    return Expected(
        AuditAction.WEBHOOK_DELIVERY_REDELIVERED,
        AuditTarget.WEBHOOK_DELIVERY,
        delivery,
        {
            "status": {"before": "parked", "after": "pending"},
            "attempts": {"before": 8, "after": 0},
        },
    )


CALENDAR = {"kind": "ics", "url": "https://calendar.example.test/private-0123/basic.ics"}


async def _link_calendar(c: Catalogue) -> Expected:
    consultant = await c.consultant()
    linked = (await c.call("POST", f"/v1/consultants/{consultant}/calendars", CALENDAR)).json()
    return Expected(
        AuditAction.CALENDAR_LINKED,
        AuditTarget.CONSULTANT_CALENDAR,
        linked["id"],
        {
            "kind": {"before": None, "after": "ics"},
            "consultant_user_id": {"before": None, "after": str(consultant)},
        },
    )


async def _unlink_calendar(c: Catalogue) -> Expected:
    consultant = await c.consultant()
    linked = (await c.call("POST", f"/v1/consultants/{consultant}/calendars", CALENDAR)).json()
    await c.call("DELETE", f"/v1/consultants/{consultant}/calendars/{linked['id']}")
    return Expected(
        AuditAction.CALENDAR_UNLINKED,
        AuditTarget.CONSULTANT_CALENDAR,
        linked["id"],
        {"kind": {"before": "ics", "after": None}},
    )


async def _sync_calendar(c: Catalogue) -> Expected:
    consultant = await c.consultant()
    linked = (await c.call("POST", f"/v1/consultants/{consultant}/calendars", CALENDAR)).json()
    # Temporal is not reachable here; the workflow side has tests of its own.
    with mock.patch("api.routes.calendars.wake_calendar_sync", mock.AsyncMock()):
        await c.call("POST", f"/v1/consultants/{consultant}/calendars/{linked['id']}/sync")
    return Expected(
        AuditAction.CALENDAR_SYNC_REQUESTED, AuditTarget.CONSULTANT_CALENDAR, linked["id"], {}
    )


async def _feed(c: Catalogue, owner_path: str) -> str:
    return str((await c.call("POST", f"{owner_path}/calendar-feeds")).json()["id"])


def _created_feed(feed: str, role: str, owner: uuid.UUID) -> Expected:
    return Expected(
        AuditAction.CALENDAR_FEED_CREATED,
        AuditTarget.CALENDAR_FEED,
        feed,
        {
            "owner_role": {"before": None, "after": role},
            "owner_user_id": {"before": None, "after": str(owner)},
            # never the token or its hash
        },
    )


async def _revoked_feed(c: Catalogue, owner_path: str) -> Expected:
    feed = await _feed(c, owner_path)
    await c.call("DELETE", f"{owner_path}/calendar-feeds/{feed}")
    (revoked,) = [e for e in await c.entries(feed) if e.action == AuditAction.CALENDAR_FEED_REVOKED]
    assert set(revoked.changes) == {"revoked_at"}
    assert revoked.changes["revoked_at"]["before"] is None
    assert datetime.fromisoformat(revoked.changes["revoked_at"]["after"]) <= datetime.now(UTC)
    return Expected(AuditAction.CALENDAR_FEED_REVOKED, AuditTarget.CALENDAR_FEED, feed, {})


async def _create_consultant_feed(c: Catalogue) -> Expected:
    consultant = await c.consultant()
    feed = await _feed(c, f"/v1/consultants/{consultant}")
    return _created_feed(feed, "consultant", consultant)


async def _revoke_consultant_feed(c: Catalogue) -> Expected:
    return await _revoked_feed(c, f"/v1/consultants/{await c.consultant()}")


async def _create_learner_feed(c: Catalogue) -> Expected:
    learner = uuid.uuid4()
    feed = await _feed(c, f"/v1/learners/{learner}")
    return _created_feed(feed, "learner", learner)


async def _revoke_learner_feed(c: Catalogue) -> Expected:
    return await _revoked_feed(c, f"/v1/learners/{uuid.uuid4()}")


SCENARIOS: dict[str, Scenario] = {
    "POST /v1/service-types": _create_service_type,
    "PATCH /v1/service-types/{service_type_id}": _patch_service_type,
    "PUT /v1/consultants/{consultant_user_id}": _put_new_profile,
    "PATCH /v1/consultants/{consultant_user_id}": _patch_profile,
    "PUT /v1/consultants/{consultant_user_id}/service-limits/{service_type_id}": (
        _put_service_limit
    ),
    "DELETE /v1/consultants/{consultant_user_id}/service-limits/{service_type_id}": (
        _delete_service_limit
    ),
    "POST /v1/consultants/{user_id}/availability": _publish,
    "PATCH /v1/consultants/{user_id}/availability/{slot_id}": _change_slot,
    "DELETE /v1/consultants/{user_id}/availability/{slot_id}": _delete_slot,
    "POST /v1/consultants/{consultant_user_id}/calendars": _link_calendar,
    "DELETE /v1/consultants/{consultant_user_id}/calendars/{calendar_id}": _unlink_calendar,
    "POST /v1/consultants/{consultant_user_id}/calendars/{calendar_id}/sync": _sync_calendar,
    "POST /v1/webhook-subscriptions": _create_subscription,
    "PATCH /v1/webhook-subscriptions/{subscription_id}": _patch_subscription,
    "DELETE /v1/webhook-subscriptions/{subscription_id}": _delete_subscription,
    "POST /v1/webhook-subscriptions/{subscription_id}/rotate-secret": _rotate_secret,
    "POST /v1/webhook-deliveries/{delivery_id}/redeliver": _redeliver,
    "POST /v1/consultants/{user_id}/calendar-feeds": _create_consultant_feed,
    "DELETE /v1/consultants/{user_id}/calendar-feeds/{feed_id}": _revoke_consultant_feed,
    "POST /v1/learners/{user_id}/calendar-feeds": _create_learner_feed,
    "DELETE /v1/learners/{user_id}/calendar-feeds/{feed_id}": _revoke_learner_feed,
}


@pytest.fixture
def catalogue(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: SessionFactory
) -> Catalogue:
    return Catalogue(client, tokens, session_factory, uuid.uuid4())


def test_every_mutating_route_is_covered(app: FastAPI) -> None:
    mutating = {
        f"{method} {context.path_format or context.original_route.path_format}"
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        for method in (context.original_route.methods or set()) & MUTATING
    }
    mutating = {
        operation for operation in mutating if operation.split()[1].startswith(AUDITED_PREFIXES)
    }
    assert mutating - SCENARIOS.keys() == set(), "mutating routes without an audit scenario"
    assert SCENARIOS.keys() - mutating == set(), "scenarios for routes that no longer exist"


@pytest.mark.parametrize("operation", sorted(SCENARIOS))
async def test_the_change_leaves_its_audit_row(operation: str, catalogue: Catalogue) -> None:
    started = datetime.now(UTC)
    expected = await SCENARIOS[operation](catalogue)

    rows = [e for e in await catalogue.entries(expected.target_id) if e.action == expected.action]
    assert len(rows) == 1, rows
    (row,) = rows
    assert row.actor_id == catalogue.operator_id
    assert row.actor_kind == AuditActorKind.OPERATOR.value
    assert row.target_type == expected.target_type.value
    assert started - timedelta(seconds=1) <= row.occurred_at <= datetime.now(UTC)
    for name, change in expected.changes.items():
        assert row.changes.get(name) == change, (name, row.changes)
    for change in row.changes.values():
        assert change["before"] != change["after"]


async def test_the_row_is_written_in_the_transaction_of_the_change(
    catalogue: Catalogue,
) -> None:
    """Both rows carry the id of the transaction that wrote them (``xmin``)."""
    service_type = await catalogue.service_type()
    async with catalogue.sessions() as session:
        changed = await session.scalar(
            text("SELECT xmin::text FROM consultation_service_types WHERE id = :id"),
            {"id": service_type},
        )
        audited = await session.scalar(
            text("SELECT xmin::text FROM audit_log WHERE target_id = :id"), {"id": service_type}
        )
    assert changed is not None
    assert changed == audited


async def test_a_refused_change_leaves_no_row(catalogue: Catalogue) -> None:
    first = await catalogue.service_type()
    second = await catalogue.service_type()
    async with catalogue.sessions() as session:
        name = await session.scalar(
            text("SELECT name FROM consultation_service_types WHERE id = :id"), {"id": first}
        )
    refused = await catalogue.http.patch(
        f"/v1/service-types/{second}", json={"name": name}, headers=catalogue.operator
    )
    assert_problem(refused, 409)
    assert [e.action for e in await catalogue.entries(second)] == [
        AuditAction.SERVICE_TYPE_CREATED.value
    ]


async def test_no_calendar_address_or_password_reaches_the_trail(catalogue: Catalogue) -> None:
    consultant = await catalogue.consultant()
    body = {
        "kind": "caldav",
        "url": "https://dav.example.test/calendars/ada/work-7f3a/",
        "username": "ada",
        "password": "app-password-9c1e",
    }
    linked = await catalogue.call("POST", f"/v1/consultants/{consultant}/calendars", body)
    await catalogue.call("DELETE", f"/v1/consultants/{consultant}/calendars/{linked.json()['id']}")
    async with catalogue.sessions() as session:
        trail = await session.scalar(text("SELECT string_agg(changes::text, ' ') FROM audit_log"))
    assert trail is not None
    for secret in ("work-7f3a", "app-password-9c1e", "dav.example.test"):
        assert secret not in trail


async def test_no_secret_reaches_the_trail(catalogue: Catalogue) -> None:
    created = await catalogue.call(
        "POST", "/v1/webhook-subscriptions", {"url": "https://hooks.example.test/s"}
    )
    subscription = created.json()["id"]
    rotated = await catalogue.call(
        "POST", f"/v1/webhook-subscriptions/{subscription}/rotate-secret"
    )
    secrets = {created.json()["secret"], rotated.json()["secret"]}
    async with catalogue.sessions() as session:
        trail = await session.scalar(text("SELECT string_agg(changes::text, ' ') FROM audit_log"))
    assert trail is not None
    assert "secret" not in trail.replace("previous_secret_expires_at", "")
    for secret in secrets:
        assert secret not in trail
        assert secret.removeprefix("whsec_") not in trail


async def test_a_consultant_changing_their_own_profile_acts_as_consultant(
    catalogue: Catalogue,
) -> None:
    consultant = await catalogue.consultant()
    response = await catalogue.http.patch(
        f"/v1/consultants/{consultant}",
        json={"display_name": "Ada L."},
        headers=catalogue.tokens.headers("consultant", sub=consultant),
    )
    assert response.status_code == 200, response.text
    rows = await catalogue.entries(consultant)
    assert [(e.action, e.actor_kind, e.actor_id) for e in rows] == [
        (AuditAction.CONSULTANT_PROFILE_CREATED.value, "operator", catalogue.operator_id),
        (AuditAction.CONSULTANT_PROFILE_UPDATED.value, "consultant", consultant),
    ]
    assert rows[1].changes == {"display_name": {"before": "Ada", "after": "Ada L."}}


async def test_a_learner_revoking_their_own_feed_acts_as_learner(catalogue: Catalogue) -> None:
    learner = uuid.uuid4()
    headers = catalogue.tokens.headers("learner", sub=learner)
    path = f"/v1/learners/{learner}/calendar-feeds"
    made = await catalogue.http.post(path, headers=headers)
    assert made.status_code == 201, made.text
    feed = made.json()
    revoked = await catalogue.http.delete(f"{path}/{feed['id']}", headers=headers)
    assert revoked.status_code == 204, revoked.text
    again = await catalogue.http.delete(f"{path}/{feed['id']}", headers=headers)
    assert again.status_code == 204, again.text
    rows = await catalogue.entries(feed["id"])
    assert [(e.action, e.actor_kind, e.actor_id) for e in rows] == [
        (AuditAction.CALENDAR_FEED_CREATED.value, "learner", learner),
        (AuditAction.CALENDAR_FEED_REVOKED.value, "learner", learner),  # once
    ]
    trail = " ".join(str(e.changes) for e in rows)
    assert feed["token"] not in trail
    assert "token" not in trail


# --- reading it -----------------------------------------------------------------------

LOG = "/v1/audit-log"


async def _read(catalogue: Catalogue, **params: Any) -> list[dict[str, Any]]:
    """Every page of the filtered log, two entries at a time."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await catalogue.http.get(LOG, params=query, headers=catalogue.operator)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_operators_page_through_the_log_newest_first(catalogue: Catalogue) -> None:
    service_types = [await catalogue.service_type() for _ in range(3)]
    for service_type in service_types:
        await catalogue.call("PATCH", f"/v1/service-types/{service_type}", {"is_active": False})

    everything = await _read(catalogue)
    assert len(everything) == 6
    keys = [(item["occurred_at"], item["id"]) for item in everything]
    assert keys == sorted(keys, reverse=True)
    assert len({item["id"] for item in everything}) == 6

    one = await _read(catalogue, target_id=service_types[1])
    assert [item["action"] for item in one] == ["service_type.updated", "service_type.created"]

    updates = await _read(catalogue, action="service_type.updated", target_type="service_type")
    assert {item["target_id"] for item in updates} == set(service_types)

    mine = await _read(catalogue, actor_id=str(catalogue.operator_id))
    assert len(mine) == 6
    assert await _read(catalogue, actor_id=str(uuid.uuid4())) == []


async def test_the_time_window_bounds_the_log(catalogue: Catalogue) -> None:
    await catalogue.service_type()
    now = datetime.now(UTC)
    assert len(await _read(catalogue, **{"from": (now - timedelta(minutes=1)).isoformat()})) == 1
    assert await _read(catalogue, **{"from": (now + timedelta(seconds=1)).isoformat()}) == []
    assert await _read(catalogue, to=(now - timedelta(minutes=1)).isoformat()) == []


async def test_bad_queries_are_problems(catalogue: Catalogue) -> None:
    now = datetime.now(UTC).isoformat()
    headers = catalogue.operator
    assert_problem(await catalogue.http.get(LOG, params={"cursor": "nope"}, headers=headers), 400)
    assert_problem(
        await catalogue.http.get(LOG, params={"from": now, "to": now}, headers=headers), 422
    )
    assert_problem(await catalogue.http.get(LOG, params={"action": "x"}, headers=headers), 422)
    for role in ("learner", "consultant"):
        assert_problem(await catalogue.http.get(LOG, headers=catalogue.tokens.headers(role)), 403)
