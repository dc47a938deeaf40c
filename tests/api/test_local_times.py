"""The learner's time zone on a request, and both parties' wall times in request and
session responses (a learner in Asia/Tokyo, a consultant in America/New_York, on
each side of New York's spring-forward on 2027-03-14)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowUpdateWithStartInput,
    WorkflowUpdateHandle,
)

from api.app import create_app
from api.submissions import request_id_for
from core.settings import Settings
from tests.activities.builders import Backend, future
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory
from workflows.contracts.workflow_input import ConsultationInput

REQUESTS, SESSIONS = "/v1/consultation-requests", "/v1/sessions"
TOKYO, NEW_YORK, BERLIN = "Asia/Tokyo", "America/New_York", "Europe/Berlin"
BEFORE_SPRING_FORWARD = datetime(2027, 3, 12, 14, tzinfo=UTC)  # 09:00 EST, 23:00 in Tokyo
AFTER_SPRING_FORWARD = datetime(2027, 3, 15, 13, tzinfo=UTC)  # 09:00 EDT, 22:00 in Tokyo


@pytest.fixture
def backend(session_factory: async_sessionmaker[AsyncSession]) -> Backend:
    return Backend(session_factory)


class StartRecorder(Interceptor):
    """Keeps the workflow input of each submission (the server is unreachable)."""

    def __init__(self) -> None:
        self.inputs: list[ConsultationInput] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        recorder = self

        class Recording(OutboundInterceptor):
            async def start_update_with_start_workflow(
                self, input: StartWorkflowUpdateWithStartInput
            ) -> WorkflowUpdateHandle[Any]:
                recorder.inputs.extend(input.start_workflow_input.args)
                return await super().start_update_with_start_workflow(input)

        return Recording(next)


@pytest.fixture
def recorder() -> StartRecorder:
    return StartRecorder()


@pytest.fixture
async def berlin_client(
    settings: Settings, clean_database: AsyncEngine, recorder: StartRecorder
) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a service whose learners are in Berlin unless they say otherwise."""
    temporal = await Client.connect("127.0.0.1:1", lazy=True, interceptors=[recorder])
    app: FastAPI = create_app(
        settings.model_copy(update={"default_learner_time_zone": BERLIN}), temporal=temporal
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def local(zone: str, start: str, end: str, offset: str) -> dict[str, str]:
    return {"time_zone": zone, "start_time": start, "end_time": end, "utc_offset": offset}


async def new_york_session(
    backend: Backend, learner: uuid.UUID, start: datetime, **request: Any
) -> tuple[uuid.UUID, uuid.UUID]:
    """A 45-minute session with a New York consultant: (request, session)."""
    service_type = await backend.service_type(minutes=45)
    consultant = await backend.consultant(time_zone=NEW_YORK)
    slot = await backend.slot(consultant, start)
    request_id = await backend.request(
        service_type,
        window_start=start,
        window_end=start + timedelta(minutes=45),
        requester_id=learner,
        **request,
    )
    reserved = await backend.book(request_id, slot, consultant, start, minutes=45)
    return request_id, reserved.session_id


# --- the request body -----------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe", "", "Asia/" + "x" * 80, 9])
async def test_an_unknown_zone_is_a_422_naming_the_field(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend, zone: object
) -> None:
    body = {"service_type_id": str(await backend.service_type()), "learner_time_zone": zone}

    problem = assert_problem(
        await client.post(REQUESTS, json=body, headers=tokens.headers("learner")), 422
    )

    assert problem["type"].endswith("/validation-error")
    assert [error["loc"] for error in problem["errors"]] == [["body", "learner_time_zone"]]


async def test_the_zone_or_the_default_goes_into_the_workflow_input(
    berlin_client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    recorder: StartRecorder,
) -> None:
    service_type = str(await backend.service_type())
    headers = tokens.headers("learner")

    for body in (
        {"service_type_id": service_type, "learner_time_zone": TOKYO},
        {"service_type_id": service_type},
    ):
        assert_problem(await berlin_client.post(REQUESTS, json=body, headers=headers), 503)

    assert [request.learner_time_zone for request in recorder.inputs] == [TOKYO, BERLIN]


async def test_a_retry_with_another_zone_is_another_request(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    service_type = await backend.service_type()
    request_id = request_id_for(learner, "zone")
    await backend.request(
        service_type,
        window_start=future(2),
        window_end=future(9),
        requester_id=learner,
        request_id=request_id,
        idempotency_key="zone",
        learner_time_zone=TOKYO,
    )
    headers = tokens.headers("learner", sub=learner) | {"Idempotency-Key": "zone"}
    body: dict[str, Any] = {"service_type_id": str(service_type)}

    same = await client.post(REQUESTS, json={**body, "learner_time_zone": TOKYO}, headers=headers)
    unsaid = await client.post(REQUESTS, json=body, headers=headers)  # the default is not compared
    other = await client.post(REQUESTS, json={**body, "learner_time_zone": BERLIN}, headers=headers)

    assert (same.status_code, unsaid.status_code) == (200, 200), (same.text, unsaid.text)
    assert same.json()["learner_time_zone"] == TOKYO
    assert assert_problem(other, 409)["request_id"] == str(request_id)


# --- request responses ----------------------------------------------------------------


async def test_a_request_shows_its_session_on_both_clocks(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    request_id, _ = await new_york_session(
        backend, learner, BEFORE_SPRING_FORWARD, learner_time_zone=TOKYO
    )
    headers = tokens.headers("learner", sub=learner)

    one = (await client.get(f"{REQUESTS}/{request_id}", headers=headers)).json()
    (listed,) = (await client.get(REQUESTS, headers=headers)).json()["items"]

    for view in (one, listed):
        assert view["status"] == "scheduled"
        assert view["learner_time_zone"] == TOKYO
        assert view["learner_local"] == local(
            TOKYO, "2027-03-12T23:00:00+09:00", "2027-03-12T23:45:00+09:00", "+09:00"
        )
        assert view["consultant_local"] == local(
            NEW_YORK, "2027-03-12T09:00:00-05:00", "2027-03-12T09:45:00-05:00", "-05:00"
        )


async def test_a_chosen_start_is_shown_before_there_is_a_session(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    service_type = await backend.service_type(minutes=45)
    consultant = await backend.consultant(time_zone=NEW_YORK)
    slot = await backend.slot(consultant, AFTER_SPRING_FORWARD)
    start, end = AFTER_SPRING_FORWARD, AFTER_SPRING_FORWARD + timedelta(minutes=45)
    by_slot = await backend.request(
        service_type,
        window_start=start,
        window_end=end,
        requester_id=learner,
        requested_slot_id=slot,
        requested_start=start,
        learner_time_zone=TOKYO,
    )
    by_consultant = await backend.request(
        service_type,
        window_start=start,
        window_end=end,
        requester_id=learner,
        preferred_consultant_id=consultant,
        requested_start=start,
        learner_time_zone=TOKYO,
    )
    headers = tokens.headers("learner", sub=learner)

    for request_id in (by_slot, by_consultant):
        view = (await client.get(f"{REQUESTS}/{request_id}", headers=headers)).json()
        assert view["status"] == "pending_assignment"
        assert view["learner_local"] == local(
            TOKYO, "2027-03-15T22:00:00+09:00", "2027-03-15T22:45:00+09:00", "+09:00"
        )
        assert view["consultant_local"] == local(
            NEW_YORK, "2027-03-15T09:00:00-04:00", "2027-03-15T09:45:00-04:00", "-04:00"
        )


async def test_a_request_without_a_time_has_no_local_times(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    request_id = await backend.request(
        await backend.service_type(),
        window_start=future(2),
        window_end=future(9),
        requester_id=learner,
        learner_time_zone=TOKYO,
    )

    view = (
        await client.get(f"{REQUESTS}/{request_id}", headers=tokens.headers("learner", sub=learner))
    ).json()

    assert view["learner_time_zone"] == TOKYO
    assert (view["learner_local"], view["consultant_local"]) == (None, None)


async def test_requests_from_before_zones_read_as_the_default(
    berlin_client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    request_id, session_id = await new_york_session(
        backend, learner, AFTER_SPRING_FORWARD, learner_time_zone=None
    )
    headers = tokens.headers("learner", sub=learner)

    request = (await berlin_client.get(f"{REQUESTS}/{request_id}", headers=headers)).json()
    session = (await berlin_client.get(f"{SESSIONS}/{session_id}", headers=headers)).json()

    assert request["learner_time_zone"] == BERLIN
    berlin = local(BERLIN, "2027-03-15T14:00:00+01:00", "2027-03-15T14:45:00+01:00", "+01:00")
    assert request["learner_local"] == session["learner_local"] == berlin


# --- session responses ----------------------------------------------------------------


async def test_sessions_are_shown_on_both_clocks(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    _, before = await new_york_session(
        backend, learner, BEFORE_SPRING_FORWARD, learner_time_zone=TOKYO
    )
    _, after = await new_york_session(
        backend, learner, AFTER_SPRING_FORWARD, learner_time_zone=TOKYO
    )
    headers = tokens.headers("learner", sub=learner)

    listed = (await client.get(SESSIONS, headers=headers)).json()["items"]
    one = (await client.get(f"{SESSIONS}/{after}", headers=headers)).json()

    assert [item["id"] for item in listed] == [str(before), str(after)]
    assert [item["learner_local"]["start_time"] for item in listed] == [
        "2027-03-12T23:00:00+09:00",
        "2027-03-15T22:00:00+09:00",
    ]
    assert [item["consultant_local"]["utc_offset"] for item in listed] == ["-05:00", "-04:00"]
    assert listed[0]["consultant_local"] == local(
        NEW_YORK, "2027-03-12T09:00:00-05:00", "2027-03-12T09:45:00-05:00", "-05:00"
    )
    assert one["start"] == "2027-03-15T13:00:00Z"
    assert one["learner_local"] == listed[1]["learner_local"]
    assert one["consultant_local"] == local(
        NEW_YORK, "2027-03-15T09:00:00-04:00", "2027-03-15T09:45:00-04:00", "-04:00"
    )


async def test_the_openapi_document_describes_the_new_fields(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]

    body = schemas["ConsultationRequestCreate"]["properties"]["learner_time_zone"]
    assert "IANA" in body["description"]
    for name in ("learner_time_zone", "learner_local", "consultant_local"):
        assert schemas["ConsultationRequestOut"]["properties"][name]["description"]
    for name in ("learner_local", "consultant_local"):
        assert schemas["SessionOut"]["properties"][name]["description"]
    assert "utc_offset" in schemas["LocalTimes"]["required"]
