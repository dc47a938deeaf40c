"""Who may call what: every operation of the OpenAPI document, every kind of caller,
and their own or someone else's resource, against the README's rules.

An operation missing from ``MATRIX`` fails ``test_every_operation_has_a_row``, so a
new endpoint cannot ship without its row. Each cell expects a status class:

- ``OK``: 2xx;
- ``ALLOWED``: let through authentication and authorization (neither 401 nor 403,
  and no 5xx but 503). Used where the call reaches Temporal, which is unreachable
  here (503), or where the state refuses after the checks (409): authorization is
  decided before any workflow is asked;
- ``401``, ``403``, ``404``: refused, or hidden like a missing resource.

"Mine" is the resource of the learner and consultant whose tokens are used (the
learner's request and session, both assigned to that consultant; the consultant's
profile and calendar); "theirs" is another learner's and consultant's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.client import Client

from api.app import create_app
from core.settings import Settings
from core.vocabulary import ParticipantRole
from db import calendar_feeds, exports
from db.models import ConsultantCalendar, ConsultantServiceLimit, WebhookSubscription
from integrations.webhooks.signing import generate_secret
from tests.abuse.world import Party, World
from tests.support.tokens import TokenFactory

Caller = Literal["anonymous", "learner", "consultant", "operator", "events:read"]
CALLERS: tuple[Caller, ...] = ("anonymous", "learner", "consultant", "operator", "events:read")
Whose = Literal["mine", "theirs"]

OK, ALLOWED = "2xx", "allowed"
Expectation = str | int
Cell = Expectation | tuple[Expectation, Expectation]  # one for both, or (mine, theirs)

MEETING_WEBHOOK_SECRET = "meeting-platform-secret-for-the-matrix-0000"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, str] | None = None


Build = Callable[[World, Party, Party], Awaitable[Call]]


@dataclass(frozen=True)
class Row:
    build: Build
    cells: dict[Caller, Cell]
    owned: bool = False  # whether "mine" and "theirs" differ for this operation


def everyone(expected: Expectation) -> dict[Caller, Cell]:
    return dict.fromkeys(CALLERS, expected)


def signed_in(expected: Expectation) -> dict[Caller, Cell]:
    """Learners, consultants and operators; a machine token (events:read) is not a user."""
    return {
        "anonymous": 401,
        "learner": expected,
        "consultant": expected,
        "operator": expected,
        "events:read": 403,
    }


def operators(expected: Expectation) -> dict[Caller, Cell]:
    return {**dict.fromkeys(CALLERS, 403), "anonymous": 401, "operator": expected}


def managers(expected: Expectation) -> dict[Caller, Cell]:
    """The consultant (of their own profile or calendar) and operators."""
    return {**operators(expected), "consultant": (expected, 403)}


def parties(expected: Expectation, *, consultant: Cell | None = None) -> dict[Caller, Cell]:
    """A learner's and their consultant's own request or session; operators any."""
    return {
        "anonymous": 401,
        "learner": (expected, 404),
        "consultant": consultant if consultant is not None else (expected, 404),
        "operator": expected,
        "events:read": 403,
    }


# --- request builders ------------------------------------------------------------


def fixed(method: str, path: str, **kw: Any) -> Build:
    async def build(world: World, learner: Party, consultant: Party) -> Call:
        return Call(method, path.format(world=world, learner=learner, consultant=consultant), **kw)

    return build


def _window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"from": now.isoformat(), "to": (now + timedelta(days=14)).isoformat()}


async def _new_slot_window(world: World, learner: Party, consultant: Party) -> Call:
    start = world.fresh_start()
    body = {"start_time": start.isoformat(), "end_time": (start + timedelta(hours=1)).isoformat()}
    return Call("POST", f"/v1/consultants/{consultant.user_id}/availability", json=body)


async def _change_slot(world: World, learner: Party, consultant: Party) -> Call:
    slot = await world.free_slot(consultant.user_id)
    path = f"/v1/consultants/{consultant.user_id}/availability/{slot}"
    return Call("PATCH", path, json={"status": "unavailable"})


async def _delete_slot(world: World, learner: Party, consultant: Party) -> Call:
    slot = await world.free_slot(consultant.user_id)
    return Call("DELETE", f"/v1/consultants/{consultant.user_id}/availability/{slot}")


async def _delete_service_limit(world: World, learner: Party, consultant: Party) -> Call:
    async with world.backend.session_factory() as session, session.begin():
        await session.merge(
            ConsultantServiceLimit(
                consultant_user_id=consultant.user_id,
                consultation_service_type_id=world.service_type_id,
                max_sessions_per_day=2,
            )
        )
    return Call("DELETE", f"{profile_of(consultant)}/service-limits/{world.service_type_id}")


async def _calendar_path(world: World, consultant: Party) -> str:
    """A calendar of the consultant's of its own per call (the operator's cell really
    deletes it); its sealed address is never opened here."""
    async with world.backend.session_factory() as session, session.begin():
        calendar = ConsultantCalendar(
            consultant_user_id=consultant.user_id,
            kind="ics",
            address_ciphertext=b"sealed",
            address_hint="https://calendar.example.test/…",
        )
        session.add(calendar)
    return f"{profile_of(consultant)}/calendars/{calendar.id}"


def on_calendar(method: str, suffix: str = "") -> Build:
    async def build(world: World, learner: Party, consultant: Party) -> Call:
        return Call(method, await _calendar_path(world, consultant) + suffix)

    return build


def profile_of(consultant: Party) -> str:
    return f"/v1/consultants/{consultant.user_id}"


async def _reschedule(world: World, learner: Party, consultant: Party) -> Call:
    slot = await world.free_slot(consultant.user_id)
    path = f"/v1/sessions/{learner.session_id}/reschedule"
    return Call("POST", path, json={"slot_id": str(slot)})


async def _delete_subscription(world: World, learner: Party, consultant: Party) -> Call:
    # A subscription of its own per call: the operator's cell really deletes it.
    async with world.backend.session_factory() as session, session.begin():
        subscription = WebhookSubscription(
            url="https://gone.example.test", secret=generate_secret()
        )
        session.add(subscription)
    return Call("DELETE", f"/v1/webhook-subscriptions/{subscription.id}")


async def _create_service_type(world: World, learner: Party, consultant: Party) -> Call:
    body = {"name": f"matrix-{uuid.uuid4()}", "default_duration_minutes": 30}
    return Call("POST", "/v1/service-types", json=body)


async def _submit(world: World, learner: Party, consultant: Party) -> Call:
    body = {"service_type_id": str(world.service_type_id)}
    return Call("POST", "/v1/consultation-requests", json=body)


async def _assign(world: World, learner: Party, consultant: Party) -> Call:
    body = {"consultant_id": str(consultant.user_id)}
    return Call("POST", f"/v1/consultation-requests/{learner.request_id}/assign", json=body)


async def _search(world: World, learner: Party, consultant: Party) -> Call:
    params = {"service_type_id": str(world.service_type_id), **_window()}
    return Call("GET", "/v1/availability/search", params=params)


async def _export_of_learner(world: World, learner: Party, consultant: Party) -> Call:
    async with world.backend.session_factory() as session, session.begin():
        export = await exports.create_export(
            session, subject_id=learner.user_id, requested_by=learner.user_id
        )
    return Call("GET", f"/v1/people/{learner.user_id}/data-exports/{export.id}")


async def _document_of_learner(world: World, learner: Party, consultant: Party) -> Call:
    call = await _export_of_learner(world, learner, consultant)
    return Call("GET", call.path + "/document")  # still pending: 409 once let through


async def _fresh_person(method: str) -> Call:
    return Call(method, f"/v1/people/{uuid.uuid4()}/erasure")


def the_person(expected: Expectation) -> dict[Caller, Cell]:
    """The learner whose data it is, and operators; a consultant is someone else here."""
    return {**operators(expected), "learner": (expected, 403)}


async def _feed(world: World, role: ParticipantRole, owner: uuid.UUID) -> tuple[uuid.UUID, str]:
    """A feed of its own per call (the operator's cell really revokes it): id, token."""
    token = calendar_feeds.new_token()
    async with world.backend.session_factory() as session, session.begin():
        feed = await calendar_feeds.create_feed(session, role, owner, token)
    return feed.id, token


async def _revoke_consultant_feed(world: World, learner: Party, consultant: Party) -> Call:
    feed_id, _ = await _feed(world, ParticipantRole.CONSULTANT, consultant.user_id)
    return Call("DELETE", f"{profile_of(consultant)}/calendar-feeds/{feed_id}")


async def _revoke_learner_feed(world: World, learner: Party, consultant: Party) -> Call:
    feed_id, _ = await _feed(world, ParticipantRole.LEARNER, learner.user_id)
    return Call("DELETE", f"/v1/learners/{learner.user_id}/calendar-feeds/{feed_id}")


async def _read_feed(world: World, learner: Party, consultant: Party) -> Call:
    feed_id, token = await _feed(world, ParticipantRole.LEARNER, learner.user_id)
    return Call("GET", f"/v1/calendar-feeds/{feed_id}/calendar.ics", params={"token": token})


REQUEST = "/v1/consultation-requests/{learner.request_id}"
SESSION = "/v1/sessions/{learner.session_id}"
PROFILE = "/v1/consultants/{consultant.user_id}"
SUBSCRIPTION = "/v1/webhook-subscriptions/{world.subscription_id}"

MATRIX: dict[str, Row] = {
    # Operations: public.
    "GET /healthz": Row(fixed("GET", "/healthz"), everyone(OK)),
    "GET /readyz": Row(fixed("GET", "/readyz"), everyone(ALLOWED)),  # 503: no Temporal here
    "GET /metrics": Row(fixed("GET", "/metrics"), everyone(OK)),
    # The catalog: any user reads it, operators curate service types.
    "GET /v1/service-types": Row(fixed("GET", "/v1/service-types"), signed_in(OK)),
    "POST /v1/service-types": Row(_create_service_type, operators(OK)),
    "GET /v1/service-types/{service_type_id}": Row(
        fixed("GET", "/v1/service-types/{world.service_type_id}"), signed_in(OK)
    ),
    "PATCH /v1/service-types/{service_type_id}": Row(
        fixed("PATCH", "/v1/service-types/{world.service_type_id}", json={"description": "m"}),
        operators(OK),
    ),
    "GET /v1/consultants": Row(fixed("GET", "/v1/consultants"), signed_in(OK)),
    "GET /v1/consultants/{consultant_user_id}": Row(
        fixed("GET", PROFILE), signed_in(OK), owned=True
    ),
    "PUT /v1/consultants/{consultant_user_id}": Row(
        fixed("PUT", PROFILE, json={"time_zone": "UTC"}), managers(OK), owned=True
    ),
    "PATCH /v1/consultants/{consultant_user_id}": Row(
        fixed("PATCH", PROFILE, json={"bio": "matrix"}), managers(OK), owned=True
    ),
    # Caps per service type: the consultant and operators set them, users read them.
    "GET /v1/consultants/{consultant_user_id}/service-limits": Row(
        fixed("GET", PROFILE + "/service-limits"), signed_in(OK), owned=True
    ),
    "PUT /v1/consultants/{consultant_user_id}/service-limits/{service_type_id}": Row(
        fixed(
            "PUT",
            PROFILE + "/service-limits/{world.service_type_id}",
            json={"max_sessions_per_day": 3},
        ),
        managers(OK),
        owned=True,
    ),
    "DELETE /v1/consultants/{consultant_user_id}/service-limits/{service_type_id}": Row(
        _delete_service_limit, managers(OK), owned=True
    ),
    # A consultant's calendar: they and operators manage it, users see its free slots.
    "POST /v1/consultants/{user_id}/availability": Row(_new_slot_window, managers(OK), owned=True),
    "GET /v1/consultants/{user_id}/availability": Row(
        fixed("GET", PROFILE + "/availability"), signed_in(OK), owned=True
    ),
    "PATCH /v1/consultants/{user_id}/availability/{slot_id}": Row(
        _change_slot, managers(OK), owned=True
    ),
    "DELETE /v1/consultants/{user_id}/availability/{slot_id}": Row(
        _delete_slot, managers(OK), owned=True
    ),
    # Linked calendars: only the consultant and operators, reading as writing (the
    # address is secret, and even its hint and errors are theirs alone).
    "POST /v1/consultants/{consultant_user_id}/calendars": Row(
        fixed(
            "POST",
            PROFILE + "/calendars",
            json={"kind": "ics", "url": "https://calendar.example.test/private/basic.ics"},
        ),
        managers(OK),
        owned=True,
    ),
    "GET /v1/consultants/{consultant_user_id}/calendars": Row(
        fixed("GET", PROFILE + "/calendars"), managers(OK), owned=True
    ),
    "GET /v1/consultants/{consultant_user_id}/calendars/{calendar_id}": Row(
        on_calendar("GET"), managers(OK), owned=True
    ),
    "DELETE /v1/consultants/{consultant_user_id}/calendars/{calendar_id}": Row(
        on_calendar("DELETE"), managers(OK), owned=True
    ),
    "POST /v1/consultants/{consultant_user_id}/calendars/{calendar_id}/sync": Row(
        on_calendar("POST", "/sync"),
        managers(ALLOWED),  # 503: the sync workflow cannot be woken here
        owned=True,
    ),
    "GET /v1/availability/search": Row(_search, signed_in(OK)),
    # Requests: learners submit; each party acts on their own, operators on all.
    "GET /v1/consultation-requests": Row(fixed("GET", "/v1/consultation-requests"), signed_in(OK)),
    "POST /v1/consultation-requests": Row(_submit, {**operators(403), "learner": ALLOWED}),
    "GET /v1/consultation-requests/{request_id}": Row(
        fixed("GET", REQUEST), parties(OK), owned=True
    ),
    "POST /v1/consultation-requests/{request_id}/confirm": Row(
        fixed("POST", REQUEST + "/confirm"),
        # Someone else's request is a 404 to a consultant it was never offered to.
        {**operators(403), "consultant": (ALLOWED, 404)},
        owned=True,
    ),
    "POST /v1/consultation-requests/{request_id}/decline": Row(
        fixed("POST", REQUEST + "/decline", json={"reason": "schedule_conflict"}),
        {**operators(403), "consultant": (ALLOWED, 404)},
        owned=True,
    ),
    "POST /v1/consultation-requests/{request_id}/cancel": Row(
        fixed("POST", REQUEST + "/cancel", json={"reason": "change_of_plans"}),
        parties(ALLOWED, consultant=403),  # a consultant declines instead
        owned=True,
    ),
    "POST /v1/consultation-requests/{request_id}/assign": Row(
        _assign, operators(ALLOWED), owned=True
    ),
    # Sessions: scoped like requests.
    "GET /v1/sessions": Row(fixed("GET", "/v1/sessions"), signed_in(OK)),
    "GET /v1/sessions/{session_id}": Row(fixed("GET", SESSION), parties(OK), owned=True),
    "POST /v1/sessions/{session_id}/cancel": Row(
        fixed("POST", SESSION + "/cancel", json={"reason": "schedule_conflict"}),
        parties(ALLOWED),
        owned=True,
    ),
    "POST /v1/sessions/{session_id}/reschedule": Row(_reschedule, parties(ALLOWED), owned=True),
    "GET /v1/sessions/{session_id}/calendar.ics": Row(
        fixed("GET", SESSION + "/calendar.ics"), parties(OK), owned=True
    ),
    # Calendar feeds: the person (in the feed's role) and operators manage them; the
    # feed itself opens with its token alone, whoever asks.
    "POST /v1/consultants/{user_id}/calendar-feeds": Row(
        fixed("POST", PROFILE + "/calendar-feeds"), managers(OK), owned=True
    ),
    "GET /v1/consultants/{user_id}/calendar-feeds": Row(
        fixed("GET", PROFILE + "/calendar-feeds"), managers(OK), owned=True
    ),
    "DELETE /v1/consultants/{user_id}/calendar-feeds/{feed_id}": Row(
        _revoke_consultant_feed, managers(OK), owned=True
    ),
    "POST /v1/learners/{user_id}/calendar-feeds": Row(
        fixed("POST", "/v1/learners/{learner.user_id}/calendar-feeds"),
        the_person(OK),
        owned=True,
    ),
    "GET /v1/learners/{user_id}/calendar-feeds": Row(
        fixed("GET", "/v1/learners/{learner.user_id}/calendar-feeds"),
        the_person(OK),
        owned=True,
    ),
    "DELETE /v1/learners/{user_id}/calendar-feeds/{feed_id}": Row(
        _revoke_learner_feed, the_person(OK), owned=True
    ),
    "GET /v1/calendar-feeds/{feed_id}/calendar.ics": Row(_read_feed, everyone(OK)),
    "POST /v1/sessions/{session_id}/no-show": Row(
        fixed("POST", SESSION + "/no-show", json={"party": "learner"}),
        {**parties(ALLOWED), "learner": 403},  # the session has not started: 409
        owned=True,
    ),
    # The event feed and webhooks: operators (and the feed's machine readers).
    "GET /v1/events": Row(fixed("GET", "/v1/events"), {**operators(OK), "events:read": OK}),
    "POST /v1/webhook-subscriptions": Row(
        fixed("POST", "/v1/webhook-subscriptions", json={"url": "https://hooks.example.test"}),
        operators(OK),
    ),
    "GET /v1/webhook-subscriptions": Row(fixed("GET", "/v1/webhook-subscriptions"), operators(OK)),
    "GET /v1/webhook-subscriptions/{subscription_id}": Row(
        fixed("GET", SUBSCRIPTION), operators(OK)
    ),
    "PATCH /v1/webhook-subscriptions/{subscription_id}": Row(
        fixed("PATCH", SUBSCRIPTION, json={"description": "matrix"}), operators(OK)
    ),
    "DELETE /v1/webhook-subscriptions/{subscription_id}": Row(_delete_subscription, operators(OK)),
    "POST /v1/webhook-subscriptions/{subscription_id}/rotate-secret": Row(
        fixed("POST", SUBSCRIPTION + "/rotate-secret"), operators(OK)
    ),
    "GET /v1/webhook-subscriptions/{subscription_id}/deliveries": Row(
        fixed("GET", SUBSCRIPTION + "/deliveries"), operators(OK)
    ),
    "POST /v1/webhook-deliveries/{delivery_id}/redeliver": Row(
        fixed("POST", f"/v1/webhook-deliveries/{uuid.uuid4()}/redeliver"),
        operators(ALLOWED),  # 404: there is no such delivery
    ),
    # A person's data: the person themself and operators.
    "POST /v1/people/{person_id}/data-exports": Row(
        fixed("POST", "/v1/people/{learner.user_id}/data-exports"),
        the_person(ALLOWED),  # 503: the export's workflow cannot be started here
        owned=True,
    ),
    "GET /v1/people/{person_id}/data-exports/{export_id}": Row(
        _export_of_learner, the_person(OK), owned=True
    ),
    "GET /v1/people/{person_id}/data-exports/{export_id}/document": Row(
        _document_of_learner, the_person(ALLOWED), owned=True
    ),
    # Erasure: operators (a fresh person each time: once asked for, a person is gone).
    "POST /v1/people/{person_id}/erasure": Row(
        lambda world, learner, consultant: _fresh_person("POST"),
        operators(ALLOWED),  # recorded, then 503: the workflow cannot be started here
    ),
    "GET /v1/people/{person_id}/erasure": Row(
        lambda world, learner, consultant: _fresh_person("GET"),
        operators(ALLOWED),  # 404: never asked for
    ),
    "POST /v1/webhooks/iam": Row(fixed("POST", "/v1/webhooks/iam", json={}), everyone(401)),
    # The audit trail: operators only.
    "GET /v1/audit-log": Row(fixed("GET", "/v1/audit-log"), operators(OK)),
    # Signed by the meeting platform: a bearer token is no substitute for the signature.
    "POST /v1/webhooks/meeting-platform": Row(
        fixed("POST", "/v1/webhooks/meeting-platform", json={}), everyone(401)
    ),
}


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def matrix_app(settings: Settings) -> AsyncIterator[FastAPI]:
    configured = settings.model_copy(
        update={
            "meeting_webhook_secret": SecretStr(MEETING_WEBHOOK_SECRET),
            "iam_webhook_secret": SecretStr(MEETING_WEBHOOK_SECRET),
        }
    )
    unreachable = await Client.connect("127.0.0.1:1", lazy=True)
    application = create_app(configured, temporal=unreachable)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def http(matrix_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=matrix_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _headers(tokens: TokenFactory, world: World, caller: Caller) -> dict[str, str]:
    match caller:
        case "anonymous":
            return {}
        case "learner":
            return tokens.headers("learner", sub=world.learner.user_id)
        case "consultant":
            return tokens.headers("consultant", sub=world.consultant.user_id)
        case _:
            return tokens.headers(caller)


def _matches(expected: Expectation, status: int) -> bool:
    if expected == OK:
        return 200 <= status < 300
    if expected == ALLOWED:
        return status not in {401, 403} and (status < 500 or status == 503)
    return status == expected


# --- tests -------------------------------------------------------------------------


def test_every_operation_has_a_row(matrix_app: FastAPI) -> None:
    documented = {
        f"{method.upper()} {path}"
        for path, operations in matrix_app.openapi()["paths"].items()
        for method in operations
    }
    assert documented - MATRIX.keys() == set(), "operations without a row in MATRIX"
    assert MATRIX.keys() - documented == set(), "rows for operations that no longer exist"


@pytest.mark.parametrize("operation", sorted(MATRIX))
async def test_authorization(
    operation: str, world: World, http: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    row = MATRIX[operation]
    targets: dict[Whose, tuple[Party, Party]] = {
        "mine": (world.learner, world.consultant),
        "theirs": (world.other_learner, world.other_consultant),
    }
    wrong: list[str] = []
    for caller in CALLERS:
        cell = row.cells[caller]
        for whose, (learner, consultant) in targets.items():
            if whose == "theirs" and not row.owned:
                continue
            expected = cell[0 if whose == "mine" else 1] if isinstance(cell, tuple) else cell
            call = await row.build(world, learner, consultant)
            response = await http.request(
                call.method,
                call.path,
                json=call.json,
                params=call.params,
                headers=_headers(tokens, world, caller),
            )
            if not _matches(expected, response.status_code):
                wrong.append(
                    f"{caller:>11} on {whose:<6}: expected {expected}, got "
                    f"{response.status_code} {response.text[:160]}"
                )
            elif response.status_code in {401, 403}:
                assert response.headers["content-type"].startswith("application/problem+json")
    assert not wrong, f"{operation}\n" + "\n".join(wrong)
