"""POST /v1/webhooks/meeting-platform: the signature is the authentication."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from api.routes import meeting_platform_webhooks as webhook_route
from api.routes.meeting_platform_webhooks import get_meeting_signaller
from core.settings import Settings
from db.models import (
    ConsultantProfile,
    ConsultationRequest,
    InboundWebhookEvent,
    ScheduledSession,
    ServiceType,
)
from integrations import meeting_webhooks
from integrations.meeting_webhooks import MeetingPlatformEvent, SignatureError, StaleTimestamp
from tests.events.conftest import MEETING_SECRET
from tests.support.problems import assert_problem

URL = "/v1/webhooks/meeting-platform"
MEETING = "meet-4711"


@dataclass
class FakeSignaller:
    calls: list[tuple[uuid.UUID, MeetingPlatformEvent]] = field(default_factory=list)
    running: bool = True
    error: Exception | None = None
    hangs: bool = False
    # Called as the signal goes out: what the API holds of the database meanwhile.
    probe: Callable[[], int] | None = None
    probed: list[int] = field(default_factory=list)

    async def __call__(self, request_id: uuid.UUID, event: MeetingPlatformEvent) -> bool:
        if self.probe is not None:
            self.probed.append(self.probe())
        if self.error is not None:
            raise self.error
        if self.hangs:
            await asyncio.Event().wait()  # a signal that never returns
        self.calls.append((request_id, event))
        return self.running


@pytest.fixture
def signaller(app: FastAPI) -> FakeSignaller:
    fake = FakeSignaller()
    app.dependency_overrides[get_meeting_signaller] = lambda: fake
    return fake


@pytest.fixture
async def request_id(session_factory: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    """A scheduled session whose meeting is ``MEETING``; returns its request's id."""
    consultant, learner = uuid.uuid4(), uuid.uuid4()
    start = datetime(2030, 3, 4, 10, tzinfo=UTC)
    async with session_factory() as session, session.begin():
        service_type = ServiceType(name="Coaching", default_duration_minutes=30)
        session.add_all([service_type, ConsultantProfile(consultant_user_id=consultant)])
        await session.flush()
        request = ConsultationRequest(
            requester_user_id=learner,
            consultation_service_type_id=service_type.id,
            status="scheduled",
        )
        session.add(request)
        await session.flush()
        session.add(
            ScheduledSession(
                consultation_request_id=request.id,
                requester_user_id=learner,
                consultant_user_id=consultant,
                consultation_service_type_id=service_type.id,
                scheduled_start_time=start,
                scheduled_end_time=start + timedelta(minutes=30),
                meeting_platform_session_id=MEETING,
            )
        )
    return request.id


def _event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "participant.joined",
        "meeting_id": MEETING,
        "occurred_at": "2030-03-04T10:01:00Z",
        "participant": {"role": "learner", "name": "not kept"},
    }
    event.update(overrides)
    return event


def _signed(
    body: bytes, *, secret: str = MEETING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    sent = str(timestamp if timestamp is not None else int(time.time()))
    return {
        "X-Meeting-Timestamp": sent,
        "X-Meeting-Signature": meeting_webhooks.sign(body, sent, secret),
        "Content-Type": "application/json",
    }


async def _post(client: httpx.AsyncClient, event: dict[str, Any], **signing: Any) -> httpx.Response:
    body = json.dumps(event).encode()
    return await client.post(URL, content=body, headers=_signed(body, **signing))


async def _recorded(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as session:
        count = await session.scalar(select(func.count()).select_from(InboundWebhookEvent))
    return count or 0


async def _states(session_factory: async_sessionmaker[AsyncSession]) -> list[str]:
    async with session_factory() as session:
        return list((await session.scalars(select(InboundWebhookEvent.state))).all())


async def test_a_signed_event_signals_the_workflow_once(
    client: httpx.AsyncClient,
    signaller: FakeSignaller,
    request_id: uuid.UUID,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    event = _event()
    response = await _post(client, event)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "reason": None}
    [(signalled_request, signalled)] = signaller.calls
    assert signalled_request == request_id
    assert signalled.type is meeting_webhooks.MeetingEventType.PARTICIPANT_JOINED
    assert signalled.participant is not None
    assert signalled.participant.role == "learner"
    assert signalled.occurred_at == datetime(2030, 3, 4, 10, 1, tzinfo=UTC)

    # The platform redelivers (same id, freshly signed): acknowledged, no second effect.
    again = await _post(client, event)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert len(signaller.calls) == 1
    assert await _recorded(session_factory) == 1


@pytest.mark.parametrize("event_type", ["meeting.started", "participant.left", "meeting.ended"])
async def test_every_event_type_is_accepted(
    client: httpx.AsyncClient, signaller: FakeSignaller, request_id: uuid.UUID, event_type: str
) -> None:
    extra = {} if event_type.startswith("participant") else {"participant": None}
    response = await _post(client, _event(type=event_type, **extra))
    assert response.status_code == 202, response.text
    assert [event.type.value for _, event in signaller.calls] == [event_type]


async def test_forged_signature_is_401(
    client: httpx.AsyncClient, signaller: FakeSignaller, request_id: uuid.UUID
) -> None:
    response = await _post(client, _event(), secret="someone-elses-secret")
    assert_problem(response, 401)

    # A genuine signature over a different body does not carry over.
    original = json.dumps(_event()).encode()
    tampered = original.replace(b"learner", b"consultant")
    response = await client.post(URL, content=tampered, headers=_signed(original))
    assert_problem(response, 401)
    assert signaller.calls == []


@pytest.mark.parametrize("skew", [-400, 400])
async def test_stale_or_future_timestamp_is_401(
    client: httpx.AsyncClient, signaller: FakeSignaller, request_id: uuid.UUID, skew: int
) -> None:
    response = await _post(client, _event(), timestamp=int(time.time()) + skew)
    body = assert_problem(response, 401)
    assert "away from now" in body["detail"]
    assert signaller.calls == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Meeting-Timestamp": "1"},
        {"X-Meeting-Signature": "v1=00"},
        {"X-Meeting-Timestamp": "soon", "X-Meeting-Signature": "v1=00"},
    ],
)
async def test_missing_or_malformed_signature_headers_are_401(
    client: httpx.AsyncClient, signaller: FakeSignaller, headers: dict[str, str]
) -> None:
    response = await client.post(URL, content=json.dumps(_event()).encode(), headers=headers)
    assert_problem(response, 401)


async def test_unknown_meeting_is_acknowledged_and_ignored(
    client: httpx.AsyncClient,
    signaller: FakeSignaller,
    request_id: uuid.UUID,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    response = await _post(client, _event(meeting_id="meet-unknown"))
    assert response.status_code == 202
    assert response.json() == {"status": "ignored", "reason": "unknown_meeting"}
    assert signaller.calls == []
    assert await _recorded(session_factory) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps(_event(type="meeting.exploded")).encode(),
        json.dumps(_event(participant=None)).encode(),
        json.dumps(_event(participant={"role": "spectator"})).encode(),
        json.dumps(_event(occurred_at="2030-03-04T10:01:00")).encode(),  # no zone
        json.dumps(_event(id="")).encode(),
    ],
)
async def test_a_signed_but_malformed_body_is_422(
    client: httpx.AsyncClient, signaller: FakeSignaller, request_id: uuid.UUID, body: bytes
) -> None:
    response = await client.post(URL, content=body, headers=_signed(body))
    assert_problem(response, 422)
    assert signaller.calls == []


async def test_an_oversized_body_is_413(
    client: httpx.AsyncClient, signaller: FakeSignaller
) -> None:
    body = b"x" * (70 * 1024)
    assert_problem(await client.post(URL, content=body, headers=_signed(body)), 413)


async def test_temporal_unreachable_is_503_and_the_retry_takes_effect(
    client: httpx.AsyncClient,
    signaller: FakeSignaller,
    request_id: uuid.UUID,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    event = _event()
    signaller.error = RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")
    assert_problem(await _post(client, event), 503)
    assert await _states(session_factory) == ["received"]

    signaller.error = None
    response = await _post(client, event)
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    assert len(signaller.calls) == 1
    assert await _states(session_factory) == ["delivered"]
    assert (await _post(client, event)).json()["status"] == "duplicate"


async def test_no_database_connection_is_held_while_the_workflow_is_signalled(
    app: FastAPI, client: httpx.AsyncClient, signaller: FakeSignaller, request_id: uuid.UUID
) -> None:
    signaller.probe = app.state.container.engine.pool.checkedout
    response = await _post(client, _event())
    assert response.status_code == 202, response.text
    assert signaller.probed == [0]


async def test_a_signal_that_hangs_is_503_and_the_retry_takes_effect(
    client: httpx.AsyncClient,
    signaller: FakeSignaller,
    request_id: uuid.UUID,
    session_factory: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhook_route, "SIGNAL_TIMEOUT", timedelta(milliseconds=200))
    event = _event()
    signaller.hangs = True
    assert_problem(await _post(client, event), 503)
    assert await _states(session_factory) == ["received"]

    signaller.hangs = False
    assert (await _post(client, event)).status_code == 202
    assert len(signaller.calls) == 1
    assert await _states(session_factory) == ["delivered"]


async def test_a_finished_request_is_acknowledged(
    client: httpx.AsyncClient, signaller: FakeSignaller, request_id: uuid.UUID
) -> None:
    signaller.running = False
    event = _event(type="meeting.ended", participant=None)
    response = await _post(client, event)
    assert response.json() == {"status": "ignored", "reason": "request_finished"}
    assert (await _post(client, event)).json()["status"] == "duplicate"


@pytest.fixture
async def unconfigured_client(
    settings: Settings, unreachable_temporal: Client, app: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(
        settings.model_copy(update={"meeting_webhook_secret": None}),
        temporal=unreachable_temporal,
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_without_a_configured_secret_everything_is_refused(
    unconfigured_client: httpx.AsyncClient,
) -> None:
    body = json.dumps(_event()).encode()
    assert_problem(await unconfigured_client.post(URL, content=body, headers=_signed(body)), 503)


# --- the verification on its own ---------------------------------------------------


NOW = datetime(2030, 1, 1, tzinfo=UTC)
TOLERANCE = timedelta(minutes=5)


def _verify(body: bytes, timestamp: str, signature: str, now: datetime = NOW) -> None:
    meeting_webhooks.verify(
        body,
        timestamp=timestamp,
        signature=signature,
        secret=MEETING_SECRET,
        tolerance=TOLERANCE,
        now=now,
    )


def test_verify_accepts_any_matching_v1_signature_among_several() -> None:
    body, sent = b'{"id": "1"}', str(int(NOW.timestamp()))
    good = meeting_webhooks.sign(body, sent, MEETING_SECRET)
    other = meeting_webhooks.sign(body, sent, "the-platforms-next-secret")
    _verify(body, sent, f"{other}, {good}")
    _verify(body, sent, good, now=NOW + TOLERANCE)


def test_verify_signs_timestamp_and_body_together() -> None:
    body, sent = b'{"id": "1"}', str(int(NOW.timestamp()))
    signature = meeting_webhooks.sign(body, sent, MEETING_SECRET)
    with pytest.raises(SignatureError):
        _verify(body, str(int(sent) + 1), signature)  # a moved timestamp breaks it
    with pytest.raises(SignatureError):
        _verify(body, sent, signature.replace("v1=", "v0="))
    with pytest.raises(SignatureError):
        _verify(body, sent, signature.upper())
    with pytest.raises(StaleTimestamp):
        _verify(body, sent, signature, now=NOW + TOLERANCE + timedelta(seconds=1))
