"""Service types: read by anyone authenticated, curated by operators."""

from __future__ import annotations

import uuid

import httpx

from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

URL = "/v1/service-types"


async def _create(
    client: httpx.AsyncClient, tokens: TokenFactory, name: str = "Career coaching", **extra: object
) -> dict[str, object]:
    response = await client.post(
        URL,
        json={"name": name, "default_duration_minutes": 45, **extra},
        headers=tokens.headers("operator"),
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_operator_creates_and_anyone_reads(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    created = await _create(
        client, tokens, required_specialization="careers", confirmation_timeout_seconds=600
    )
    assert created["is_active"] is True
    assert created["required_specialization"] == "careers"

    response = await client.get(f"{URL}/{created['id']}", headers=tokens.headers("learner"))
    assert response.status_code == 200
    assert response.json() == created


async def test_duplicate_name_is_409(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    await _create(client, tokens, "Code review")
    response = await client.post(
        URL,
        json={"name": "Code review", "default_duration_minutes": 30},
        headers=tokens.headers("operator"),
    )
    body = assert_problem(response, 409)
    assert "Code review" in body["detail"]


async def test_patch_to_a_taken_name_is_409(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    await _create(client, tokens, "First")
    second = await _create(client, tokens, "Second")
    response = await client.patch(
        f"{URL}/{second['id']}", json={"name": "First"}, headers=tokens.headers("operator")
    )
    assert_problem(response, 409)


async def test_patch_changes_only_given_fields(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    created = await _create(client, tokens, description="Long talk")
    response = await client.patch(
        f"{URL}/{created['id']}",
        json={"default_duration_minutes": 60, "is_active": False},
        headers=tokens.headers("operator"),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["default_duration_minutes"] == 60
    assert body["is_active"] is False
    assert body["description"] == "Long talk"
    assert body["updated_at"] >= str(created["updated_at"])


async def test_patch_cannot_null_a_required_field(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    created = await _create(client, tokens)
    response = await client.patch(
        f"{URL}/{created['id']}", json={"name": None}, headers=tokens.headers("operator")
    )
    assert_problem(response, 422)


async def test_list_filters_and_paginates(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    for index in range(5):
        await _create(client, tokens, f"Type {index}", is_active=index % 2 == 0)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(URL, params=params, headers=tokens.headers("learner"))).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Type {index}" for index in range(5)]

    active = await client.get(URL, params={"active": "true"}, headers=tokens.headers("learner"))
    assert [item["name"] for item in active.json()["items"]] == ["Type 0", "Type 2", "Type 4"]


async def test_tampered_cursor_is_400(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    response = await client.get(
        URL, params={"cursor": "definitely-not-ours"}, headers=tokens.headers("learner")
    )
    assert_problem(response, 400)


async def test_learner_and_consultant_cannot_write(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    created = await _create(client, tokens)
    for role in ("learner", "consultant"):
        post = await client.post(
            URL, json={"name": "X", "default_duration_minutes": 5}, headers=tokens.headers(role)
        )
        assert_problem(post, 403)
        patch = await client.patch(
            f"{URL}/{created['id']}", json={"name": "Y"}, headers=tokens.headers(role)
        )
        assert_problem(patch, 403)


async def test_unknown_service_type_is_404(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    unknown = uuid.uuid4()
    assert_problem(await client.get(f"{URL}/{unknown}", headers=tokens.headers("learner")), 404)
    assert_problem(
        await client.patch(
            f"{URL}/{unknown}", json={"name": "Z"}, headers=tokens.headers("operator")
        ),
        404,
    )


async def test_invalid_bodies_are_422(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    for body in (
        {"name": "", "default_duration_minutes": 30},
        {"name": "Zero", "default_duration_minutes": 0},
        {"name": "Extra", "default_duration_minutes": 30, "price": 10},
        {"default_duration_minutes": 30},
    ):
        response = await client.post(URL, json=body, headers=tokens.headers("operator"))
        problem = assert_problem(response, 422)
        assert problem["errors"]
    raw = await client.post(
        URL,
        content=b"{not json",
        headers={**tokens.headers("operator"), "content-type": "application/json"},
    )
    assert_problem(raw, 422)


async def test_malformed_id_is_422(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    assert_problem(await client.get(f"{URL}/not-a-uuid", headers=tokens.headers("learner")), 422)


async def test_a_start_interval_is_5_to_240_minutes_or_the_default(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    default = await _create(client, tokens, "Default step")
    stepped = await _create(client, tokens, "Half-hourly", start_interval_minutes=30)
    assert default["start_interval_minutes"] is None
    assert stepped["start_interval_minutes"] == 30

    operator = tokens.headers("operator")
    for wrong in (4, 241, "15", 12.5):
        body = {"name": f"Step {wrong}", "default_duration_minutes": 30}
        refused = await client.post(
            URL, json=body | {"start_interval_minutes": wrong}, headers=operator
        )
        assert_problem(refused, 422)
    cleared = await client.patch(
        f"{URL}/{stepped['id']}", json={"start_interval_minutes": None}, headers=operator
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["start_interval_minutes"] is None
