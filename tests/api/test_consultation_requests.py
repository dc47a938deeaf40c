"""/v1/consultation-requests without a worker: who sees and may act on what, body
checks before anything starts, and the database view when Temporal is unreachable.
(The lifecycle itself is in tests/e2e.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client, Interceptor, OutboundInterceptor, QueryWorkflowInput

from api.app import create_app
from api.submissions import request_id_for
from core.settings import Settings
from core.vocabulary import Party, StatusReason
from db.models import ConsultationRequest, ConsultationRequestDraft
from tests.activities.builders import Backend, future
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory
from workflows.contracts.activity_io import CancelRequestInput

URL = "/v1/consultation-requests"


@pytest.fixture
def backend(session_factory: async_sessionmaker[AsyncSession]) -> Backend:
    return Backend(session_factory)


async def _waiting_request(backend: Backend, learner: uuid.UUID, **kw: Any) -> uuid.UUID:
    service_type = await backend.service_type()
    return await backend.request(
        service_type,
        window_start=future(2),
        window_end=future(9),
        requester_id=learner,
        **kw,
    )


async def test_each_role_sees_its_own_requests(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner, other = uuid.uuid4(), uuid.uuid4()
    consultant = await backend.consultant()
    slot = await backend.slot(consultant, future(3))
    offered = await _waiting_request(backend, learner)
    await backend.hold(offered, slot, consultant, not_before=future(3))
    waiting = await _waiting_request(backend, learner)
    theirs = await _waiting_request(backend, other)

    async def listed(*roles: str, sub: uuid.UUID, **params: Any) -> list[str]:
        response = await client.get(URL, params=params, headers=tokens.headers(*roles, sub=sub))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await listed("learner", sub=learner) == [str(waiting), str(offered)]  # newest first
    assert await listed("learner", sub=learner, status="pending_confirmation") == [str(offered)]
    assert await listed("consultant", sub=consultant) == [str(offered)]
    assert await listed("learner", "consultant", sub=consultant) == [str(offered)]
    assert set(await listed("operator", sub=uuid.uuid4())) == {
        str(offered),
        str(waiting),
        str(theirs),
    }
    assert_problem(await client.get(URL, headers=tokens.headers("events:read")), 403)


async def test_pages_follow_the_cursor(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    created = [await _waiting_request(backend, learner) for _ in range(3)]
    headers = tokens.headers("learner", sub=learner)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(URL, params=params, headers=headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [str(r) for r in reversed(created)]
    assert_problem(await client.get(URL, params={"cursor": "nope"}, headers=headers), 400)


async def test_one_request_is_the_stored_view_when_temporal_is_unreachable(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    request_id = await _waiting_request(backend, learner)

    own = await client.get(f"{URL}/{request_id}", headers=tokens.headers("learner", sub=learner))
    assert own.status_code == 200, own.text
    assert own.json()["status"] == "pending_assignment"
    assert own.json()["live"] is None
    for headers in (tokens.headers("learner"), tokens.headers("consultant")):
        hidden = assert_problem(await client.get(f"{URL}/{request_id}", headers=headers), 404)
        missing = assert_problem(await client.get(f"{URL}/{uuid.uuid4()}", headers=headers), 404)
        assert hidden["title"] == missing["title"]
    assert_problem(await client.get(f"{URL}/not-a-uuid", headers=tokens.headers("operator")), 422)


class PoolProbe(Interceptor):
    """Records how many pooled connections the API holds as each query goes out."""

    def __init__(self) -> None:
        self.in_use: Callable[[], int] = lambda: -1
        self.at_query: list[int] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        probe = self

        class Probing(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                probe.at_query.append(probe.in_use())
                return await super().query_workflow(input)

        return Probing(next)


async def test_no_database_connection_is_held_during_the_live_query(
    settings: Settings, clean_database: AsyncEngine, tokens: TokenFactory, backend: Backend
) -> None:
    probe = PoolProbe()
    temporal = await Client.connect("127.0.0.1:1", lazy=True, interceptors=[probe])
    app = create_app(settings, temporal=temporal)
    learner = uuid.uuid4()
    request_id = await _waiting_request(backend, learner)
    async with app.router.lifespan_context(app):
        probe.in_use = app.state.container.engine.pool.checkedout
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get(
                f"{URL}/{request_id}", headers=tokens.headers("learner", sub=learner)
            )
    assert response.status_code == 200, response.text
    assert probe.at_query == [0]


# --- submitting ------------------------------------------------------------------------


async def _submit(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    body: dict[str, Any],
    *,
    learner: uuid.UUID | None = None,
    key: str | None = None,
) -> httpx.Response:
    headers = tokens.headers("learner", sub=learner or uuid.uuid4())
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(URL, json=body, headers=headers)


async def test_only_learners_submit(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    body = {"service_type_id": str(await backend.service_type())}
    assert_problem(await client.post(URL, json=body), 401)
    for role in ("consultant", "operator"):
        assert_problem(await client.post(URL, json=body, headers=tokens.headers(role)), 403)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"preferred_start": _iso(future(2))}, "only one end of the window"),
        (
            {"preferred_start": _iso(future(3)), "preferred_end": _iso(future(2))},
            "window ends before it starts",
        ),
        ({"preferred_start": "2026-12-01T09:00:00", "preferred_end": _iso(future(4))}, "naive"),
        (
            {
                "slot_id": str(uuid.uuid4()),
                "preferred_start": _iso(future(2)),
                "preferred_end": _iso(future(4)),
            },
            "slot and window",
        ),
        ({"details": "x" * 4001}, "details too long"),
        ({"details": ""}, "empty details"),
        ({"details": "nul \x00 byte"}, "NUL"),
        ({"colour": "blue"}, "unknown field"),
        ({"service_type_id": "not-a-uuid"}, "not a uuid"),
    ],
)
async def test_a_malformed_body_is_a_problem_not_a_crash(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    change: dict[str, Any],
    why: str,
) -> None:
    body = {"service_type_id": str(await backend.service_type()), **change}
    problem = assert_problem(await _submit(client, tokens, body), 422)
    assert problem["errors"], why


async def test_details_that_postgresql_cannot_store_are_refused(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    service_type = await backend.service_type()
    # Written by hand: a JSON encoder would refuse the lone surrogate itself.
    raw = f'{{"service_type_id": "{service_type}", "details": "lone \\ud800 surrogate"}}'
    response = await client.post(
        URL,
        content=raw.encode(),
        headers=tokens.headers("learner") | {"Content-Type": "application/json"},
    )
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "key",
    [b"", b"k" * 256, b"tab\tinside", "naïve".encode("latin-1")],
    ids=["empty", "long", "control", "non-ascii"],
)
async def test_a_bad_idempotency_key_is_refused(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend, key: bytes
) -> None:
    body = {"service_type_id": str(await backend.service_type())}
    headers = {name.encode(): value.encode() for name, value in tokens.headers("learner").items()}
    headers[b"Idempotency-Key"] = key
    response = await client.post(URL, json=body, headers=headers)
    assert_problem(response, 422)


async def test_what_the_body_names_is_checked_before_anything_starts(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    active = str(await backend.service_type(minutes=60))
    inactive = str(await backend.service_type(active=False))
    specialised = str(await backend.service_type(specialization="law"))
    consultant = await backend.consultant()
    free = str(await backend.slot(consultant, future(3), hours=2))
    short = str(await backend.slot(consultant, future(4), hours=0.5))
    soon = str(await backend.slot(consultant, datetime.now(UTC) + timedelta(minutes=30)))
    booked = str(await backend.slot(consultant, future(5), status="booked"))
    now = datetime.now(UTC)

    cases: list[tuple[dict[str, Any], int]] = [
        ({"service_type_id": str(uuid.uuid4())}, 404),
        ({"service_type_id": inactive}, 422),
        ({"service_type_id": active, "slot_id": str(uuid.uuid4())}, 404),
        ({"service_type_id": active, "slot_id": booked}, 409),
        ({"service_type_id": active, "slot_id": short}, 422),
        ({"service_type_id": active, "slot_id": soon}, 422),  # inside the minimum notice
        ({"service_type_id": specialised, "slot_id": free}, 422),  # lacks the specialization
        (
            {
                "service_type_id": active,
                "slot_id": free,
                "preferred_consultant_id": str(uuid.uuid4()),
            },
            422,
        ),
        ({"service_type_id": active, "preferred_consultant_id": str(uuid.uuid4())}, 404),
        (
            {
                "service_type_id": active,
                "preferred_start": _iso(now),
                "preferred_end": _iso(now + timedelta(days=90)),
            },
            422,  # wider than a search may be
        ),
        (
            {
                "service_type_id": active,
                "preferred_start": _iso(now),
                "preferred_end": _iso(now + timedelta(hours=2, minutes=30)),
            },
            422,  # ends before a session could start after the notice
        ),
        (
            {
                "service_type_id": active,
                "preferred_start": _iso(future(3)),
                "preferred_end": _iso(future(3) + timedelta(minutes=30)),
            },
            422,  # shorter than a session
        ),
    ]
    for body, status in cases:
        assert_problem(await _submit(client, tokens, body, key=str(uuid.uuid4())), status)
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(ConsultationRequest)) == 0
        assert await session.scalar(select(func.count()).select_from(ConsultationRequestDraft)) == 0


async def test_an_unreachable_temporal_is_a_503(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    body = {"service_type_id": str(await backend.service_type())}
    problem = assert_problem(await _submit(client, tokens, body), 503)
    assert problem["type"].endswith("/service-unavailable")


async def test_a_stored_key_answers_without_temporal(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    """A repeat finds the row first: it needs neither the workflow nor a retry of it."""
    learner = uuid.uuid4()
    service_type = await backend.service_type()
    request_id = request_id_for(learner, "key-1")
    await backend.request(
        service_type,
        window_start=future(2),
        window_end=future(9),
        requester_id=learner,
        request_id=request_id,
        idempotency_key="key-1",
    )
    row = await backend.request_row(request_id)
    body = {
        "service_type_id": str(service_type),
        "preferred_start": _iso(row.preferred_start_time or future(2)),
        "preferred_end": _iso(row.preferred_end_time or future(9)),
    }

    again = await _submit(client, tokens, body, learner=learner, key="key-1")
    other = await _submit(
        client, tokens, {**body, "company_id": str(uuid.uuid4())}, learner=learner, key="key-1"
    )

    assert again.status_code == 200, again.text
    assert again.json()["id"] == str(request_id)
    assert again.headers["location"] == f"{URL}/{request_id}"
    reused = assert_problem(other, 409)
    assert reused["request_id"] == str(request_id)


# --- decisions ---------------------------------------------------------------------------


async def test_decisions_are_checked_against_the_stored_request_first(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    consultant, other_consultant = await backend.consultant(), await backend.consultant()
    slot = await backend.slot(consultant, future(3))
    offered = await _waiting_request(backend, learner)
    await backend.hold(offered, slot, consultant, not_before=future(3))
    finished = await _waiting_request(backend, learner)
    await backend.requests.cancel_request(
        CancelRequestInput(
            request_id=finished,
            party=Party.REQUESTER,
            actor_id=learner,
            reason=None,
            status_reason=StatusReason.CANCELLED_BY_REQUESTER,
        )
    )

    def act(request_id: uuid.UUID, action: str, *roles: str, sub: uuid.UUID, **body: Any) -> Any:
        return client.post(
            f"{URL}/{request_id}/{action}", json=body, headers=tokens.headers(*roles, sub=sub)
        )

    assert_problem(await act(offered, "confirm", "learner", sub=learner), 403)
    assert_problem(await act(offered, "confirm", "consultant", sub=other_consultant), 404)
    assert_problem(await act(offered, "decline", "consultant", sub=consultant, reason="?"), 422)
    assert_problem(await act(uuid.uuid4(), "confirm", "consultant", sub=consultant), 404)
    assert_problem(await act(offered, "cancel", "learner", sub=uuid.uuid4()), 404)
    assert_problem(await act(offered, "cancel", "consultant", sub=consultant), 403)
    assert_problem(await act(offered, "assign", "learner", sub=learner), 403)
    assert_problem(
        await act(offered, "assign", "operator", sub=uuid.uuid4(), consultant_id=str(uuid.uuid4())),
        404,
    )
    assert_problem(
        await act(
            offered,
            "assign",
            "operator",
            sub=uuid.uuid4(),
            consultant_id=str(other_consultant),
            slot_id=str(slot),
        ),
        422,
    )
    done = assert_problem(await act(finished, "cancel", "learner", sub=learner), 409)
    assert done["type"].endswith("/request-finished")
    # Allowed by the stored request, so it goes to the workflow, which is unreachable.
    assert_problem(await act(offered, "confirm", "consultant", sub=consultant), 503)
    assert_problem(await act(offered, "cancel", "learner", sub=learner, reason="illness"), 503)


async def test_a_chosen_start_is_checked_before_anything_starts(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Off the grid is a 422 naming the grid; on it but not free a 409 saying why."""
    service_type = str(await backend.service_type(minutes=30, step=15))
    consultant = await backend.consultant(time_zone="Europe/Berlin")
    other = await backend.consultant()
    day = future(3, hour=0)
    block = await backend.slot(consultant, day + timedelta(hours=8), hours=3)
    later = await backend.slot(consultant, day + timedelta(hours=13), hours=1)
    await backend.slot(consultant, day + timedelta(hours=11), hours=1, status="unavailable")
    taken_by = await backend.request(
        uuid.UUID(service_type), window_start=day, window_end=day + timedelta(days=1)
    )
    held = await backend.hold(
        taken_by, block, consultant, not_before=day, minutes=30, start=day + timedelta(hours=10)
    )
    assert held.held
    soon_slot = await backend.slot(
        other, datetime.now(UTC).replace(second=0, microsecond=0), hours=3
    )

    def body(start: datetime, **where: Any) -> dict[str, Any]:
        return {"service_type_id": service_type, "start": start.isoformat(), **where}

    at_slot = {"slot_id": str(block)}
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        (body(day + timedelta(hours=8, minutes=10), **at_slot), 422, None),
        (body(day + timedelta(hours=10), **at_slot), 409, "taken"),
        (body(day + timedelta(hours=10, minutes=15), **at_slot), 409, "taken"),  # overlaps it
        (body(day + timedelta(hours=10, minutes=45), **at_slot), 409, "outside_slot"),
        (body(day + timedelta(hours=13), **at_slot), 409, "outside_slot"),  # another slot
        (body(day + timedelta(hours=11), consultant_id=str(consultant)), 409, "unavailable"),
        (body(day + timedelta(hours=15), consultant_id=str(consultant)), 409, "outside_slot"),
        (
            body(
                datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1),
                slot_id=str(soon_slot),
            ),
            409,
            "too_soon",
        ),
        (body(day + timedelta(hours=9), consultant_id=str(uuid.uuid4())), 404, None),
        (body(day + timedelta(hours=9), slot_id=str(uuid.uuid4())), 404, None),
        (body(day + timedelta(hours=13), slot_id=str(later), consultant_id=str(other)), 422, None),
        (body(day + timedelta(hours=9)), 422, None),  # whose start?
        (
            body(
                day + timedelta(hours=9),
                slot_id=str(block),
                preferred_start=_iso(day),
                preferred_end=_iso(day + timedelta(days=1)),
            ),
            422,
            None,
        ),
        ({"service_type_id": service_type, "consultant_id": str(consultant)}, 422, None),
    ]
    for case, status, reason in cases:
        problem = assert_problem(await _submit(client, tokens, case), status)
        if reason is not None:
            assert problem["type"].endswith("/start-unavailable"), problem
            assert problem["reason"] == reason, (case, problem)
    off_grid = assert_problem(
        await _submit(client, tokens, body(day + timedelta(hours=8, minutes=10), **at_slot)), 422
    )
    assert off_grid["type"].endswith("/start-off-grid")
    assert (off_grid["start_interval_minutes"], off_grid["time_zone"]) == (15, "Europe/Berlin")
    assert "every 15 minutes from midnight, Europe/Berlin time" in off_grid["detail"]
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(ConsultationRequest)) == 1


async def test_a_free_chosen_start_goes_on_to_the_workflow(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    """Both ways of naming a free start pass the checks (then Temporal, unreachable here)."""
    service_type = str(await backend.service_type(minutes=30, step=15))
    consultant = await backend.consultant(time_zone="Asia/Kathmandu")
    day = future(3, hour=0)
    block = await backend.slot(consultant, day + timedelta(hours=8), hours=3)
    start = (day + timedelta(hours=9, minutes=15)).isoformat()  # 15:00 in Kathmandu

    for where in ({"slot_id": str(block)}, {"consultant_id": str(consultant)}):
        body = {"service_type_id": service_type, "start": start, **where}
        assert_problem(await _submit(client, tokens, body), 503)


async def test_a_stored_chosen_start_answers_its_key(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    service_type = await backend.service_type(minutes=30)
    consultant = await backend.consultant()
    start = future(3, hour=9)
    request_id = request_id_for(learner, "chosen")
    await backend.request(
        service_type,
        window_start=start,
        window_end=start + timedelta(minutes=30),
        requester_id=learner,
        request_id=request_id,
        idempotency_key="chosen",
        preferred_consultant_id=consultant,
        requested_start=start,
    )
    body = {
        "service_type_id": str(service_type),
        "start": _iso(start),
        "consultant_id": str(consultant),
    }

    again = await _submit(client, tokens, body, learner=learner, key="chosen")
    later = {**body, "start": _iso(start + timedelta(minutes=15))}
    other = await _submit(client, tokens, later, learner=learner, key="chosen")

    assert again.status_code == 200, again.text
    assert again.json()["requested_start"] == start.isoformat().replace("+00:00", "Z")
    assert assert_problem(other, 409)["request_id"] == str(request_id)
