"""/v1/webhook-subscriptions: operators manage endpoints; the secret is shown once."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.events.helpers import create_subscription
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

URL = "/v1/webhook-subscriptions"
HOOK = "https://billing.example.com/hooks/booking"


def _secret_bytes(secret: str) -> bytes:
    assert secret.startswith("whsec_")
    return base64.b64decode(secret.removeprefix("whsec_"))


async def test_create_shows_the_secret_once(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    created = await create_subscription(
        client,
        tokens,
        HOOK,
        event_types=["session.scheduled", "consultation.requested", "session.scheduled"],
        description="billing",
    )
    assert len(_secret_bytes(created["secret"])) == 32
    assert created["url"] == HOOK
    assert created["event_types"] == ["consultation.requested", "session.scheduled"]
    assert created["is_enabled"] is True

    read = (await client.get(f"{URL}/{created['id']}", headers=tokens.headers("operator"))).json()
    assert "secret" not in read
    assert read == {
        k: v for k, v in created.items() if k not in {"secret", "previous_secret_expires_at"}
    }

    listed = (await client.get(URL, headers=tokens.headers("operator"))).json()
    assert all("secret" not in item for item in listed["items"])


async def test_secrets_differ(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    first = await create_subscription(client, tokens, HOOK)
    second = await create_subscription(client, tokens, HOOK)
    assert first["secret"] != second["secret"]


async def test_list_pages_and_filters(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    ids = [(await create_subscription(client, tokens, f"{HOOK}/{n}"))["id"] for n in range(3)]
    await client.patch(
        f"{URL}/{ids[1]}", json={"is_enabled": False}, headers=tokens.headers("operator")
    )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(URL, params=params, headers=tokens.headers("operator"))).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == 3

    disabled = await client.get(
        URL, params={"enabled": "false"}, headers=tokens.headers("operator")
    )
    assert [item["id"] for item in disabled.json()["items"]] == [ids[1]]


async def test_patch_changes_only_given_fields(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    created = await create_subscription(client, tokens, HOOK, description="billing")
    response = await client.patch(
        f"{URL}/{created['id']}",
        json={"is_enabled": False, "event_types": ["session.completed"], "description": None},
        headers=tokens.headers("operator"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["is_enabled"] is False
    assert body["event_types"] == ["session.completed"]
    assert body["description"] is None
    assert body["url"] == HOOK
    assert body["updated_at"] >= created["updated_at"]

    cleared = await client.patch(
        f"{URL}/{created['id']}", json={"event_types": []}, headers=tokens.headers("operator")
    )
    assert cleared.json()["event_types"] == []


@pytest.mark.parametrize("field", ["url", "event_types", "is_enabled"])
async def test_patch_cannot_null_a_required_field(
    client: httpx.AsyncClient, tokens: TokenFactory, field: str
) -> None:
    created = await create_subscription(client, tokens, HOOK)
    response = await client.patch(
        f"{URL}/{created['id']}", json={field: None}, headers=tokens.headers("operator")
    )
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/hook"},
        {"url": "example.com/hook"},
        {"url": "http://"},
        {"url": "https://user:password@example.com/hook"},
        {"url": "https://exa mple.com/hook"},
        {"url": "https://example.com:99999/hook"},
        {"url": "https://example.com/" + "a" * 2100},
        {"url": HOOK, "event_types": ["consultation.exploded"]},
        {"url": HOOK, "event_types": "session.scheduled"},
        {"url": HOOK, "secret": "whsec_mine"},
        {"url": HOOK, "description": "x" * 501},
        {},
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, tokens: TokenFactory, body: dict[str, Any]
) -> None:
    response = await client.post(URL, json=body, headers=tokens.headers("operator"))
    assert_problem(response, 422)


async def test_rotate_returns_a_new_secret(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    created = await create_subscription(client, tokens, HOOK)
    response = await client.post(
        f"{URL}/{created['id']}/rotate-secret", headers=tokens.headers("operator")
    )
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["secret"] != created["secret"]
    assert len(_secret_bytes(rotated["secret"])) == 32
    assert rotated["previous_secret_expires_at"] is not None


async def test_delete(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    created = await create_subscription(client, tokens, HOOK)
    path = f"{URL}/{created['id']}"
    assert (await client.delete(path, headers=tokens.headers("operator"))).status_code == 204
    assert_problem(await client.get(path, headers=tokens.headers("operator")), 404)
    assert_problem(await client.delete(path, headers=tokens.headers("operator")), 404)


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    operator = tokens.headers("operator")
    unknown = f"{URL}/{uuid.uuid4()}"
    assert_problem(await client.get(unknown, headers=operator), 404)
    assert_problem(await client.patch(unknown, json={}, headers=operator), 404)
    assert_problem(await client.post(f"{unknown}/rotate-secret", headers=operator), 404)
    assert_problem(await client.get(f"{unknown}/deliveries", headers=operator), 404)
    assert_problem(await client.get(f"{URL}/not-a-uuid", headers=operator), 422)
    assert_problem(await client.get(URL, params={"cursor": "garbage!"}, headers=operator), 400)


async def test_only_operators(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    created = await create_subscription(client, tokens, HOOK)
    one = f"{URL}/{created['id']}"
    calls = [
        ("POST", URL, {"url": HOOK}),
        ("GET", URL, None),
        ("GET", one, None),
        ("PATCH", one, {"is_enabled": False}),
        ("DELETE", one, None),
        ("POST", f"{one}/rotate-secret", None),
        ("GET", f"{one}/deliveries", None),
        ("POST", f"/v1/webhook-deliveries/{uuid.uuid4()}/redeliver", None),
    ]
    for method, path, body in calls:
        assert_problem(await client.request(method, path, json=body), 401)
        for role in ("learner", "consultant", "events:read"):
            response = await client.request(method, path, json=body, headers=tokens.headers(role))
            assert_problem(response, 403)
    # Nothing above changed it.
    still = (await client.get(one, headers=tokens.headers("operator"))).json()
    assert still["is_enabled"] is True


def _forged(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


_SOME_ID = "5f0c6a52-8d3e-4c1b-9a57-0e2f7b9d4c11"


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        pytest.param("", _forged({"created_at": "yesterday", "id": _SOME_ID}), id="bad-time"),
        pytest.param(
            "", _forged({"created_at": "2030-01-01T00:00:00", "id": _SOME_ID}), id="naive-time"
        ),
        pytest.param(
            "", _forged({"created_at": "2030-01-01T00:00:00+00:00", "id": "nope"}), id="bad-id"
        ),
        pytest.param("/deliveries", _forged({"s": 2**80}), id="huge-sequence"),
        pytest.param("/deliveries", _forged({"s": "1"}), id="text-sequence"),
        pytest.param("/deliveries", _forged({"s": -1}), id="negative-sequence"),
        pytest.param("/deliveries", "%%%", id="not-base64"),
    ],
)
async def test_forged_cursors_are_400(
    client: httpx.AsyncClient, tokens: TokenFactory, path: str, cursor: str
) -> None:
    created = await create_subscription(client, tokens, HOOK)
    url = URL if not path else f"{URL}/{created['id']}{path}"
    response = await client.get(url, params={"cursor": cursor}, headers=tokens.headers("operator"))
    assert_problem(response, 400)
