"""What the fuzzing found, pinned down: each of these was a 500, or a request the OpenAPI
document calls invalid that the API accepted, or a response the document did not
describe. Fuzzing is a net; these are the regression tests."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

NUL = "with\x00nul"
LONE_SURROGATE = "lone \ud800 surrogate"


@pytest.fixture
def operator(tokens: TokenFactory) -> dict[str, str]:
    return tokens.headers("operator")


async def _profile(client: httpx.AsyncClient, operator: dict[str, str]) -> str:
    consultant = str(uuid.uuid4())
    response = await client.put(f"/v1/consultants/{consultant}", json={}, headers=operator)
    assert response.status_code == 201, response.text
    return consultant


async def _service_type(client: httpx.AsyncClient, operator: dict[str, str]) -> str:
    body = {"name": f"hardening-{uuid.uuid4()}", "default_duration_minutes": 30}
    response = await client.post("/v1/service-types", json=body, headers=operator)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("text", [NUL, LONE_SURROGATE], ids=["nul", "lone-surrogate"])
async def test_text_postgresql_cannot_store_is_422_not_500(
    client: httpx.AsyncClient, operator: dict[str, str], text: str
) -> None:
    consultant = await _profile(client, operator)
    service_type = await _service_type(client, operator)
    subscription = (
        await client.post(
            "/v1/webhook-subscriptions", json={"url": "https://a.example.test"}, headers=operator
        )
    ).json()["id"]
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", f"/v1/consultants/{uuid.uuid4()}", {"display_name": text}),
        ("PUT", f"/v1/consultants/{uuid.uuid4()}", {"specializations": [text]}),
        ("PATCH", f"/v1/consultants/{consultant}", {"bio": text}),
        ("POST", "/v1/service-types", {"name": text, "default_duration_minutes": 30}),
        ("PATCH", f"/v1/service-types/{service_type}", {"description": text}),
        ("PATCH", f"/v1/service-types/{service_type}", {"required_specialization": text}),
        ("POST", "/v1/webhook-subscriptions", {"url": f"https://a.example.test/{text}"}),
        ("PATCH", f"/v1/webhook-subscriptions/{subscription}", {"description": text}),
    ]
    for method, path, body in writes:
        # Escaped (\u0000, \ud800) as JSON carries them; httpx would not encode a surrogate.
        content = json.dumps(body).encode()
        headers = {**operator, "Content-Type": "application/json"}
        response = await client.request(method, path, content=content, headers=headers)
        assert_problem(response, 422)


async def test_a_nul_in_a_query_is_422_not_500(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    service_type = await _service_type(client, operator)
    assert_problem(
        await client.get("/v1/consultants", params={"specialization": NUL}, headers=operator), 422
    )
    search = {
        "service_type_id": service_type,
        "from": "2030-01-01T00:00:00Z",
        "to": "2030-01-02T00:00:00Z",
        "specialization": NUL,
    }
    assert_problem(
        await client.get("/v1/availability/search", params=search, headers=operator), 422
    )


async def test_a_forged_cursor_carrying_a_nul_is_400_not_500(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    position = {"name": NUL, "id": str(uuid.uuid4())}
    cursor = base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")
    response = await client.get("/v1/service-types", params={"cursor": cursor}, headers=operator)
    assert_problem(response, 400)


@pytest.mark.parametrize("zone", ["Europe", "America", "../../../etc/passwd", "posix"])
async def test_a_time_zone_that_is_a_directory_is_422_not_500(
    client: httpx.AsyncClient, operator: dict[str, str], zone: str
) -> None:
    consultant = await _profile(client, operator)
    response = await client.put(
        f"/v1/consultants/{uuid.uuid4()}", json={"time_zone": zone}, headers=operator
    )
    assert_problem(response, 422)
    response = await client.patch(
        f"/v1/consultants/{consultant}", json={"time_zone": zone}, headers=operator
    )
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "body",
    [
        {"is_active": 0},
        {"is_active": "yes"},
        {"default_duration_minutes": "30"},
        {"default_duration_minutes": True},
        {"confirmation_timeout_seconds": "60"},
    ],
)
async def test_json_types_are_not_coerced(
    client: httpx.AsyncClient, operator: dict[str, str], body: dict[str, Any]
) -> None:
    """The schema says boolean and integer; ``0``, ``"yes"``, ``"30"`` and ``true`` are not."""
    create = {"name": f"coerce-{uuid.uuid4()}", "default_duration_minutes": 30, **body}
    assert_problem(await client.post("/v1/service-types", json=create, headers=operator), 422)


async def test_a_whole_number_written_as_a_float_is_an_integer(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    body = {"name": f"float-{uuid.uuid4()}", "default_duration_minutes": 30.0}
    response = await client.post("/v1/service-types", json=body, headers=operator)
    assert response.status_code == 201, response.text
    assert response.json()["default_duration_minutes"] == 30


@pytest.mark.parametrize("moment", [1893456000, "1893456000", "0.5"])
async def test_a_unix_time_is_not_a_date_time(
    client: httpx.AsyncClient, operator: dict[str, str], moment: int | str
) -> None:
    consultant = await _profile(client, operator)
    slot = {"start_time": moment, "end_time": "2030-01-01T10:00:00Z"}
    url = f"/v1/consultants/{consultant}/availability"
    assert_problem(await client.post(url, json=slot, headers=operator), 422)
    assert_problem(await client.get(url, params={"to": str(moment)}, headers=operator), 422)
    recurring = {"rrule": "FREQ=DAILY", "start_local": "2030-01-01T09:00", "duration_minutes": 60}
    assert_problem(
        await client.post(url, json={**recurring, "until": moment}, headers=operator), 422
    )


@pytest.mark.parametrize("start_local", ["2030-01-01", "2030-01-01 09:00", "1893456000"])
async def test_start_local_is_a_local_date_time_only(
    client: httpx.AsyncClient, operator: dict[str, str], start_local: str
) -> None:
    consultant = await _profile(client, operator)
    body = {"rrule": "FREQ=DAILY", "start_local": start_local, "duration_minutes": 60, "count": 2}
    response = await client.post(
        f"/v1/consultants/{consultant}/availability", json=body, headers=operator
    )
    assert_problem(response, 422)


async def test_405_names_every_method_of_the_resource(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    response = await client.request("OPTIONS", f"/v1/consultants/{uuid.uuid4()}")
    assert_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "PATCH", "PUT"}
    response = await client.delete("/v1/service-types", headers=operator)
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


def _operations(app: FastAPI) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_error_response_is_a_documented_problem(app: FastAPI) -> None:
    document = app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = {"$ref": "#/components/schemas/Problem"}
    for label, operation in _operations(app):
        for status, response in operation["responses"].items():
            if status[0] in "45" and label != "GET /readyz":
                assert response["content"] == {"application/problem+json": {"schema": problem}} or (
                    response["content"]["application/problem+json"]["schema"] == problem
                ), (label, status)
        if operation.get("security"):
            assert {"401", "429", "422"} <= operation["responses"].keys(), label
            assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]
    readiness = document["paths"]["/readyz"]["get"]["responses"]["503"]
    assert readiness["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }


def test_fields_that_cannot_be_null_are_not_nullable_in_the_schema(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    not_nullable = {
        "ServiceTypePatch": ["name", "default_duration_minutes", "is_active"],
        "ConsultantProfilePatch": ["specializations", "is_available_for_booking", "time_zone"],
        "WebhookSubscriptionPatch": ["url", "event_types", "is_enabled"],
    }
    for model, fields in not_nullable.items():
        for name in fields:
            assert "null" not in json.dumps(schemas[model]["properties"][name]), (model, name)
    start_local = schemas["RecurringSlots"]["properties"]["start_local"]
    assert "format" not in start_local  # RFC 3339 date-times carry an offset; this one must not
