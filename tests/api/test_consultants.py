"""Consultant profiles: self-service for consultants, anything for operators."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

PROFILE = {
    "display_name": "Ada",
    "bio": "Teaches things",
    "specializations": ["Python", "careers"],
    "time_zone": "Europe/Berlin",
}


def _url(user_id: uuid.UUID) -> str:
    return f"/v1/consultants/{user_id}"


async def test_consultant_creates_then_replaces_own_profile(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    me = uuid.uuid4()
    headers = tokens.headers("consultant", sub=me)
    created = await client.put(_url(me), json=PROFILE, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["specializations"] == ["python", "careers"]
    assert created.json()["is_available_for_booking"] is True

    replaced = await client.put(_url(me), json={"bio": "New"}, headers=headers)
    assert replaced.status_code == 200
    assert replaced.json()["bio"] == "New"
    assert replaced.json()["display_name"] is None
    assert replaced.json()["time_zone"] == "UTC"


async def test_concurrent_puts_of_a_new_profile_create_it_once(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    me = uuid.uuid4()
    headers = tokens.headers("consultant", sub=me)
    responses = await asyncio.gather(
        *(client.put(_url(me), json=PROFILE, headers=headers) for _ in range(10))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 9 + [201]


async def test_patch_changes_only_given_fields(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    me = uuid.uuid4()
    headers = tokens.headers("consultant", sub=me)
    await client.put(_url(me), json=PROFILE, headers=headers)
    patched = await client.patch(
        _url(me), json={"is_available_for_booking": False}, headers=headers
    )
    assert patched.status_code == 200
    assert patched.json()["is_available_for_booking"] is False
    assert patched.json()["bio"] == "Teaches things"

    assert_problem(await client.patch(_url(me), json={"time_zone": None}, headers=headers), 422)


async def test_operator_manages_anyones_profile(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    someone = uuid.uuid4()
    response = await client.put(_url(someone), json=PROFILE, headers=tokens.headers("operator"))
    assert response.status_code == 201


async def test_another_consultant_cannot_touch_a_profile(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    owner = uuid.uuid4()
    await client.put(_url(owner), json=PROFILE, headers=tokens.headers("consultant", sub=owner))
    intruder = tokens.headers("consultant")
    assert_problem(await client.put(_url(owner), json=PROFILE, headers=intruder), 403)
    assert_problem(await client.patch(_url(owner), json={"bio": "x"}, headers=intruder), 403)


async def test_learner_cannot_create_a_profile_even_for_themselves(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    me = uuid.uuid4()
    response = await client.put(_url(me), json=PROFILE, headers=tokens.headers("learner", sub=me))
    assert_problem(response, 403)


async def test_unknown_profile_is_404(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    unknown = uuid.uuid4()
    assert_problem(await client.get(_url(unknown), headers=tokens.headers("learner")), 404)
    assert_problem(
        await client.patch(_url(unknown), json={"bio": "x"}, headers=tokens.headers("operator")),
        404,
    )


async def test_invalid_time_zone_is_422(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    me = uuid.uuid4()
    response = await client.put(
        _url(me),
        json={**PROFILE, "time_zone": "Mars/Olympus_Mons"},
        headers=tokens.headers("consultant", sub=me),
    )
    assert_problem(response, 422)


async def test_list_filters_by_specialization_and_availability(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    operator = tokens.headers("operator")
    python_open, python_closed, careers = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await client.put(_url(python_open), json={"specializations": ["python"]}, headers=operator)
    await client.put(
        _url(python_closed),
        json={"specializations": ["python"], "is_available_for_booking": False},
        headers=operator,
    )
    await client.put(_url(careers), json={"specializations": ["careers"]}, headers=operator)

    learner = tokens.headers("learner")
    found = await client.get(
        "/v1/consultants", params={"specialization": "Python"}, headers=learner
    )
    ids = {item["consultant_user_id"] for item in found.json()["items"]}
    assert ids == {str(python_open), str(python_closed)}

    bookable = await client.get(
        "/v1/consultants",
        params={"specialization": "python", "available": "true"},
        headers=learner,
    )
    assert [item["consultant_user_id"] for item in bookable.json()["items"]] == [str(python_open)]

    pages: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/consultants", params=params, headers=learner)).json()
        pages += [item["consultant_user_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(pages) == sorted(str(i) for i in (python_open, python_closed, careers))
    assert len(pages) == 3
