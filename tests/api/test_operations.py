"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import httpx
from temporalio.client import Client

from api.app import create_app
from core.settings import Settings
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_an_unreachable_temporal_as_503(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "temporal": "unreachable"}


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    await client.get("/v1/service-types", headers=tokens.headers("learner"))
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert (
        'booking_http_requests_total{method="GET",route="/v1/service-types",status="200"} 1.0'
        in response.text
    )


async def test_openapi_documents_the_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "Booking & Consultation Service"
    assert "/v1/service-types" in spec["paths"]
    assert "/v1/consultants/{consultant_user_id}" in spec["paths"]


async def test_openapi_documents_chosen_starts(client: httpx.AsyncClient) -> None:
    """Every field and problem type of starts on a grid is in the document."""
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    search = spec["paths"]["/v1/availability/search"]["get"]
    assert {"group_by", "time_zone", "earliest_only"} <= {p["name"] for p in search["parameters"]}
    assert "consultant_local" in schemas["BookableTimeOut"]["properties"]
    assert {"time_zone", "days"} <= set(schemas["BookableDays"]["properties"])
    assert {"start", "consultant_id"} <= set(schemas["ConsultationRequestCreate"]["properties"])
    assert "requested_start" in schemas["ConsultationRequestOut"]["properties"]
    assert "start" in schemas["RescheduleBody"]["properties"]
    assert "start_interval_minutes" in schemas["ServiceTypeCreate"]["properties"]
    submit = spec["paths"]["/v1/consultation-requests"]["post"]["responses"]
    assert "start-unavailable" in submit["409"]["description"]
    assert "start-off-grid" in submit["422"]["description"]
    reschedule = spec["paths"]["/v1/sessions/{session_id}/reschedule"]["post"]["responses"]
    assert "start-unavailable" in reschedule["409"]["description"]


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_unreachable_database_is_503_not_500(
    settings: Settings, unreachable_temporal: Client, tokens: TokenFactory
) -> None:
    unreachable = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    )
    application = create_app(unreachable, temporal=unreachable_temporal)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/v1/service-types", headers=tokens.headers("learner"))
    assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"
