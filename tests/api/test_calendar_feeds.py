"""Private calendar feeds: made by the person (or an operator) with the token shown
once, read by token alone as a calendar app reads them, revoked for good, cheap to
poll, and their tokens in no log line and no audit row. Sessions are booked, moved
and cancelled by the workflow's own activities."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.access_log import ACCESS_LOGGER
from api.app import create_app
from core.pseudonyms import pseudonym_for
from core.settings import Settings
from core.vocabulary import ErasureRequester
from db.erasure import request_erasure
from db.models import CalendarFeed, ScheduledSession
from tests.activities.builders import Backend, future
from tests.support.calendars import calendar_of
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

JOIN_URL = "https://meet.example.test/room-7"


@pytest.fixture
def backend(session_factory: async_sessionmaker[AsyncSession]) -> Backend:
    return Backend(session_factory)


async def _booked(
    backend: Backend, learner: uuid.UUID, consultant: uuid.UUID, start: datetime
) -> uuid.UUID:
    service_type = await backend.service_type(name=f"Mentoring {uuid.uuid4().hex[:6]}")
    slot = await backend.slot(consultant, start)
    request_id = await backend.request(
        service_type,
        window_start=start,
        window_end=start + timedelta(hours=1),
        requester_id=learner,
    )
    return (await backend.book(request_id, slot, consultant, start)).session_id


def _owner_path(role: str, user_id: uuid.UUID) -> str:
    return f"/v1/{role}s/{user_id}/calendar-feeds"


async def _feed(
    client: httpx.AsyncClient, tokens: TokenFactory, role: str, user_id: uuid.UUID
) -> dict[str, Any]:
    made = await client.post(_owner_path(role, user_id), headers=tokens.headers(role, sub=user_id))
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def _relative(url: str) -> str:
    """The subscription address as the test client requests it (the path and query)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_a_learner_makes_a_feed_and_sees_its_token_once(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    learner = uuid.uuid4()
    made = await client.post(
        _owner_path("learner", learner), headers=tokens.headers("learner", sub=learner)
    )

    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    feed = made.json()
    assert (feed["owner_role"], feed["owner_id"], feed["revoked_at"]) == (
        "learner",
        str(learner),
        None,
    )
    token = feed["token"]
    assert len(token) >= 43  # secrets.token_urlsafe(32)
    assert feed["url"] == (
        f"{settings.api_base_url}/v1/calendar-feeds/{feed['id']}/calendar.ics?token={token}"
    )
    assert feed["webcal_url"] == "webcal://" + feed["url"].split("://", 1)[1]

    listed = await client.get(
        _owner_path("learner", learner), headers=tokens.headers("learner", sub=learner)
    )
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item == {k: feed[k] for k in ("id", "owner_role", "owner_id", "created_at")} | {
        "revoked_at": None
    }
    assert token not in listed.text

    # Only the token's SHA-256 is stored; the token itself is in no row of any table.
    async with session_factory() as session:
        stored = await session.scalar(select(CalendarFeed.token_sha256))
        dumped = [
            await session.scalar(text(query))
            for query in (
                "SELECT string_agg(to_jsonb(t)::text, ' ') FROM calendar_feeds t",
                "SELECT string_agg(to_jsonb(t)::text, ' ') FROM audit_log t",
            )
        ]
    assert stored == hashlib.sha256(token.encode()).digest()
    assert all(rows is not None and token not in rows for rows in dumped)


async def test_a_feed_holds_its_owners_sessions_and_nobody_elses(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    learner, other_learner = uuid.uuid4(), uuid.uuid4()
    consultant = await backend.consultant(display_name="Ada Lovelace")
    colleague = await backend.consultant()
    mine = await _booked(backend, learner, consultant, future(3))
    with_colleague = await _booked(backend, learner, colleague, future(4))
    theirs = await _booked(backend, other_learner, consultant, future(5))
    long_ago = await _booked(backend, learner, consultant, future(6))
    async with session_factory() as session, session.begin():
        await session.execute(
            update(ScheduledSession)
            .where(ScheduledSession.id == mine)
            .values(meeting_platform_join_url=JOIN_URL)
        )
        # Past BOOKING_CALENDAR_FEED_PAST (30 days): no longer in the feed.
        await session.execute(
            update(ScheduledSession)
            .where(ScheduledSession.id == long_ago)
            .values(
                scheduled_start_time=datetime.now(UTC) - timedelta(days=31),
                scheduled_end_time=datetime.now(UTC) - timedelta(days=31, hours=-1),
            )
        )

    learner_feed = await _feed(client, tokens, "learner", learner)
    consultant_feed = await _feed(client, tokens, "consultant", consultant)

    # No bearer token: the token in the address is all a calendar app has.
    calendar, events = calendar_of(await client.get(_relative(learner_feed["url"])))
    assert str(calendar["X-WR-CALNAME"]) == "Consultations"
    assert calendar["REFRESH-INTERVAL"].to_ical() == b"PT15M"
    assert calendar["X-PUBLISHED-TTL"].to_ical() == b"PT15M"
    assert [event.session_id for event in events] == [mine, with_colleague]  # by start
    assert events[0].summary.endswith(" with Ada Lovelace")
    assert events[0].url == events[0].location == JOIN_URL
    assert events[1].url is None  # no room yet
    assert events[0].start == future(3)

    _, theirs_too = calendar_of(await client.get(_relative(consultant_feed["url"])))
    assert [event.session_id for event in theirs_too] == [mine, theirs]
    assert theirs_too[1].summary.endswith(f" with learner {str(other_learner)[:8]}")
    # The same session is the same event in either party's calendar.
    assert theirs_too[0].uid == events[0].uid


async def test_moves_and_the_cancel_reach_the_feed(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    session_id = await _booked(backend, learner, await backend.consultant(), future(3))
    address = _relative((await _feed(client, tokens, "learner", learner))["url"])

    async def only_event() -> tuple[str, int, str, datetime]:
        _, events = calendar_of(await client.get(address))
        (event,) = events
        return event.uid, event.sequence, event.status, event.start

    uid, *first = await only_event()
    assert first == [0, "CONFIRMED", future(3)]
    await backend.move(session_id, future(4, hour=15))
    assert await only_event() == (uid, 1, "CONFIRMED", future(4, hour=15))
    await backend.cancel(session_id)
    assert await only_event() == (uid, 2, "CANCELLED", future(4, hour=15))


async def test_a_wrong_unknown_or_revoked_token_is_the_same_404(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    await _booked(backend, learner, await backend.consultant(), future(3))
    feed = await _feed(client, tokens, "learner", learner)
    other = await _feed(client, tokens, "learner", uuid.uuid4())
    path = f"/v1/calendar-feeds/{feed['id']}/calendar.ics"
    assert (await client.get(path, params={"token": feed["token"]})).status_code == 200

    refusals = [
        await client.get(path, params={"token": feed["token"][:-1]}),
        await client.get(path, params={"token": other["token"]}),  # another feed's
        await client.get(path, params={"token": ""}),
        await client.get(
            f"/v1/calendar-feeds/{uuid.uuid4()}/calendar.ics", params={"token": feed["token"]}
        ),
    ]
    details = {assert_problem(refused, 404)["detail"] for refused in refusals}
    assert len(details) == 1

    owner = tokens.headers("learner", sub=learner)
    revoke = f"{_owner_path('learner', learner)}/{feed['id']}"
    assert (await client.delete(revoke, headers=owner)).status_code == 204
    revoked = assert_problem(await client.get(path, params={"token": feed["token"]}), 404)
    assert {revoked["detail"]} == details
    assert (await client.delete(revoke, headers=owner)).status_code == 204  # idempotent
    listed = (await client.get(_owner_path("learner", learner), headers=owner)).json()["items"]
    assert listed[0]["revoked_at"] is not None
    # Another person's feed is not theirs to revoke.
    assert_problem(
        await client.delete(f"{_owner_path('learner', learner)}/{other['id']}", headers=owner),
        404,
    )
    assert (await client.get(_relative(other["url"]))).status_code == 200


async def test_an_unchanged_feed_answers_304_and_a_change_a_new_etag(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner, consultant = uuid.uuid4(), await backend.consultant(display_name="Ada")
    session_id = await _booked(backend, learner, consultant, future(3))
    address = _relative((await _feed(client, tokens, "learner", learner))["url"])
    first = await client.get(address)
    etag = first.headers["etag"]
    assert first.headers["last-modified"].endswith(" GMT")
    assert first.headers["cache-control"] == "private, no-cache"

    polled = await client.get(address, headers={"If-None-Match": etag})
    assert (polled.status_code, polled.content, polled.headers["etag"]) == (304, b"", etag)
    assert (await client.get(address, headers={"If-None-Match": "*"})).status_code == 304

    await backend.move(session_id, future(4))
    moved = await client.get(address, headers={"If-None-Match": etag})
    assert moved.status_code == 200
    assert moved.headers["etag"] != etag
    # The consultant's new name changes the learner's events, not the session row.
    renamed = await client.patch(
        f"/v1/consultants/{consultant}",
        json={"display_name": "Ada Lovelace"},
        headers=tokens.headers("operator"),
    )
    assert renamed.status_code == 200, renamed.text
    now = await client.get(address, headers={"If-None-Match": moved.headers["etag"]})
    _, (event,) = calendar_of(now)
    assert event.summary.endswith(" with Ada Lovelace")


async def test_who_may_make_feeds_and_how_many(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend, settings: Settings
) -> None:
    consultant = await backend.consultant()
    no_profile = uuid.uuid4()
    learner = uuid.uuid4()
    # Only as the role the feed is for: a consultant is not a learner here.
    assert_problem(
        await client.post(
            _owner_path("learner", consultant), headers=tokens.headers("consultant", sub=consultant)
        ),
        403,
    )
    assert_problem(
        await client.post(
            _owner_path("consultant", learner), headers=tokens.headers("learner", sub=learner)
        ),
        403,
    )
    assert_problem(
        await client.post(
            _owner_path("consultant", no_profile), headers=tokens.headers("operator")
        ),
        404,
    )
    # An operator makes one for anyone; the person sees it in their list.
    made = await client.post(_owner_path("learner", learner), headers=tokens.headers("operator"))
    assert made.status_code == 201, made.text
    for _ in range(settings.calendar_feeds_per_person - 1):
        await _feed(client, tokens, "learner", learner)
    over = assert_problem(
        await client.post(
            _owner_path("learner", learner), headers=tokens.headers("learner", sub=learner)
        ),
        409,
    )
    assert over["type"].endswith("/calendar-feed-limit")
    assert over["limit"] == settings.calendar_feeds_per_person
    revoke = f"{_owner_path('learner', learner)}/{made.json()['id']}"
    assert (await client.delete(revoke, headers=tokens.headers("operator"))).status_code == 204
    await _feed(client, tokens, "learner", learner)  # room again


async def test_a_person_being_erased_gets_no_feed_and_theirs_serve_nothing(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    learner = uuid.uuid4()
    feed = await _feed(client, tokens, "learner", learner)
    async with session_factory() as session, session.begin():
        await request_erasure(
            session,
            pseudonym=pseudonym_for(learner, settings.pseudonym_secret.get_secret_value()),
            subject_id=learner,
            via=ErasureRequester.OPERATOR,
            requested_by=uuid.uuid4(),
        )
    assert_problem(await client.get(_relative(feed["url"])), 404)
    gone = assert_problem(
        await client.post(_owner_path("learner", learner), headers=tokens.headers("operator")),
        410,
    )
    assert gone["type"].endswith("/person-erased")


# --- rate limits and logs -------------------------------------------------------------


@pytest.fixture
async def limited_app(
    settings: Settings, unreachable_temporal: Client, clean_database: AsyncEngine
) -> AsyncIterator[FastAPI]:
    limited = settings.model_copy(
        update={"rate_limit_read_per_second": 0.01, "rate_limit_read_burst": 3}
    )
    application = create_app(limited, temporal=unreachable_temporal)
    async with application.router.lifespan_context(application):
        yield application


async def test_reading_a_feed_is_rate_limited_per_feed(
    limited_app: FastAPI, tokens: TokenFactory
) -> None:
    transport = httpx.ASGITransport(app=limited_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        learner = uuid.uuid4()
        feed = await _feed(client, tokens, "learner", learner)
        other = await _feed(client, tokens, "learner", uuid.uuid4())
        statuses = [(await client.get(_relative(feed["url"]))).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = assert_problem(await client.get(_relative(feed["url"])), 429)
        assert limited["type"].endswith("/rate-limited")
        # Wrong tokens spend the feed's allowance too, and other feeds are untouched.
        path = f"/v1/calendar-feeds/{feed['id']}/calendar.ics"
        assert_problem(await client.get(path, params={"token": "guess"}), 429)
        assert (await client.get(_relative(other["url"]))).status_code == 200


class _Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def access_log() -> Iterator[_Collected]:
    logger = logging.getLogger(ACCESS_LOGGER)
    handler, level = _Collected(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_the_token_stays_out_of_the_access_log(
    app: FastAPI, tokens: TokenFactory, access_log: _Collected
) -> None:
    """Served by uvicorn on loopback, as in production: its access log line for the
    feed shows the path with ``token=[redacted]``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    # No log configuration of uvicorn's own: the records reach the handler above.
    config = uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            feed = await _feed(client, tokens, "learner", uuid.uuid4())
            read = await client.get(_relative(feed["url"]) + "&other=kept")
            assert read.status_code == 200, read.text
    finally:
        server.should_exit = True
        await serving
        listener.close()
    lines = [line for line in access_log.lines if "/calendar.ics" in line]
    assert len(lines) == 1, access_log.lines
    assert feed["token"] not in "\n".join(access_log.lines)
    assert f"/v1/calendar-feeds/{feed['id']}/calendar.ics?token=[redacted]&other=kept" in lines[0]
