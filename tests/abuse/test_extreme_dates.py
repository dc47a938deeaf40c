"""Date-times at the edges of what Python can represent, in query strings, cursors and
bodies: each is a 4xx problem, never a 500 (``9999-12-31T23:00-05:00`` is year 10000
in UTC, ``0001-01-01T00:00+01:00`` year 0; converting either overflows).

The API accepts instants from 1900-01-01 to 9000-01-01 (UTC); everything here is
outside that and must be refused as bad input, wherever it is given.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client

from api.app import create_app
from core.settings import Settings
from tests.abuse.world import World
from tests.support.tokens import TokenFactory

EXTREME_INSTANTS = [
    "9999-12-31T23:00:00-05:00",
    "9999-12-31T23:59:59.999999+00:00",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "1000-06-15T12:00:00Z",
    "9500-01-01T00:00:00Z",
]
EXTREME_LOCAL = ["9999-12-31T23:00:00", "0001-01-01T01:00:00", "9999-12-31", "0001-01-01"]
NORMAL_FROM = "2030-01-01T00:00:00Z"
NORMAL_TO = "2030-01-08T00:00:00Z"


@pytest.fixture(scope="module")
async def dates_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, temporal=await Client.connect("127.0.0.1:1", lazy=True))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def http(dates_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=dates_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _refused_as_bad_input(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")


def _cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _windowed_queries(world: World) -> list[tuple[str, dict[str, str]]]:
    """Every list whose query string takes a date-time, with the rest of it valid."""
    consultant = world.consultant.user_id
    return [
        ("/v1/availability/search", {"service_type_id": str(world.service_type_id)}),
        (f"/v1/consultants/{consultant}/availability", {}),
        ("/v1/sessions", {}),
    ]


@pytest.mark.parametrize("moment", EXTREME_INSTANTS)
async def test_extreme_date_times_in_query_strings_are_refused(
    http: httpx.AsyncClient, world: World, tokens: TokenFactory, moment: str
) -> None:
    operator = tokens.headers("operator")
    for path, params in _windowed_queries(world):
        for window in ({"from": NORMAL_FROM, "to": moment}, {"from": moment, "to": NORMAL_TO}):
            response = await http.get(path, params={**params, **window}, headers=operator)
            _refused_as_bad_input(response)
    # One bound alone, where the other is optional.
    for path in ("/v1/sessions", f"/v1/consultants/{world.consultant.user_id}/availability"):
        for bound in ("from", "to"):
            _refused_as_bad_input(await http.get(path, params={bound: moment}, headers=operator))


@pytest.mark.parametrize("moment", EXTREME_INSTANTS)
async def test_cursors_carrying_extreme_date_times_are_refused(
    http: httpx.AsyncClient, world: World, tokens: TokenFactory, moment: str
) -> None:
    operator = tokens.headers("operator")
    row_id = str(uuid.uuid4())
    slot_cursor = _cursor({"start": moment, "id": row_id})
    cursors: list[tuple[str, dict[str, str]]] = [
        ("/v1/consultation-requests", {"cursor": _cursor({"at": moment, "id": row_id})}),
        ("/v1/sessions", {"cursor": _cursor({"at": moment, "id": row_id})}),
        (f"/v1/consultants/{world.consultant.user_id}/availability", {"cursor": slot_cursor}),
        (
            "/v1/availability/search",
            {
                "service_type_id": str(world.service_type_id),
                "from": NORMAL_FROM,
                "to": NORMAL_TO,
                "cursor": slot_cursor,
            },
        ),
        (
            "/v1/webhook-subscriptions",
            {"cursor": _cursor({"created_at": moment, "id": row_id})},
        ),
    ]
    for path, params in cursors:
        response = await http.get(path, params=params, headers=operator)
        assert response.status_code == 400, (path, response.text)
        _refused_as_bad_input(response)


@pytest.mark.parametrize("moment", EXTREME_INSTANTS)
async def test_extreme_date_times_in_bodies_are_refused(
    http: httpx.AsyncClient, world: World, tokens: TokenFactory, moment: str
) -> None:
    consultant = world.consultant.user_id
    url = f"/v1/consultants/{consultant}/availability"
    operator = tokens.headers("operator")
    for slot in (
        {"start_time": moment, "end_time": NORMAL_TO},
        {"start_time": NORMAL_FROM, "end_time": moment},
    ):
        _refused_as_bad_input(await http.post(url, json=slot, headers=operator))
        _refused_as_bad_input(await http.post(url, json={"slots": [slot]}, headers=operator))
    learner = tokens.headers("learner", sub=world.learner.user_id)
    for window in (
        {"preferred_start": moment, "preferred_end": NORMAL_TO},
        {"preferred_start": NORMAL_FROM, "preferred_end": moment},
    ):
        body = {"service_type_id": str(world.service_type_id), **window}
        _refused_as_bad_input(
            await http.post("/v1/consultation-requests", json=body, headers=learner)
        )


@pytest.mark.parametrize("moment", EXTREME_LOCAL)
@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
async def test_extreme_local_times_of_a_recurring_rule_are_refused(
    http: httpx.AsyncClient, world: World, tokens: TokenFactory, moment: str, zone: str
) -> None:
    """A wall time near the end of the calendar is out of range once in UTC (+14 h or
    -11 h away)."""
    url = f"/v1/consultants/{world.consultant.user_id}/availability"
    operator = tokens.headers("operator")
    rule = {"rrule": "FREQ=DAILY", "duration_minutes": 60, "time_zone": zone}
    if "T" in moment:
        response = await http.post(
            url, json={**rule, "start_local": moment, "count": 2}, headers=operator
        )
        _refused_as_bad_input(response)
    response = await http.post(
        url, json={**rule, "start_local": "2030-01-01T09:00", "until": moment}, headers=operator
    )
    _refused_as_bad_input(response)
