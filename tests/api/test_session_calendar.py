"""``GET /v1/sessions/{id}/calendar.ics``: one session as its parties import it. Sessions
are booked, moved and cancelled by the workflow's own activities (as in
tests/api/test_sessions.py); the end-to-end path through the workflow is in
tests/e2e/test_session_calendar.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ScheduledSession
from tests.activities.builders import Backend, future
from tests.support.calendars import event_of
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

JOIN_URL = "https://meet.example.test/room-42"
UID_DOMAIN = "booking-service.dev"  # BOOKING_CALENDAR_UID_DOMAIN's default


@pytest.fixture
def backend(session_factory: async_sessionmaker[AsyncSession]) -> Backend:
    return Backend(session_factory)


async def _booked(
    backend: Backend,
    learner: uuid.UUID,
    consultant: uuid.UUID,
    start: datetime,
    *,
    learner_time_zone: str | None = None,
) -> uuid.UUID:
    service_type = await backend.service_type(name=f"Career guidance {uuid.uuid4().hex[:6]}")
    slot = await backend.slot(consultant, start)
    request_id = await backend.request(
        service_type,
        window_start=start,
        window_end=start + timedelta(hours=1),
        requester_id=learner,
        learner_time_zone=learner_time_zone,
    )
    return (await backend.book(request_id, slot, consultant, start)).session_id


async def _with_join_link(
    session_factory: async_sessionmaker[AsyncSession], session_id: uuid.UUID
) -> None:
    """What the meeting activity stores once the platform made the room."""
    async with session_factory() as session, session.begin():
        await session.execute(
            update(ScheduledSession)
            .where(ScheduledSession.id == session_id)
            .values(meeting_platform_join_url=JOIN_URL)
        )


def _path(session_id: uuid.UUID) -> str:
    return f"/v1/sessions/{session_id}/calendar.ics"


async def test_each_party_gets_the_session_as_one_event_with_the_link(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    learner = uuid.uuid4()
    consultant = await backend.consultant(display_name="Maria Keller")
    start = future(3)
    session_id = await _booked(backend, learner, consultant, start)
    await _with_join_link(session_factory, session_id)
    row = await backend.session_row(session_id)
    asked_at = datetime.now(UTC).replace(microsecond=0)

    response = await client.get(_path(session_id), headers=tokens.headers("learner", sub=learner))

    event = event_of(response)
    assert event.uid == f"{session_id}@{UID_DOMAIN}"
    assert (event.start, event.end) == (start, start + timedelta(hours=1))
    assert (event.sequence, event.status, event.transparency) == (0, "CONFIRMED", "OPAQUE")
    assert event.url == event.location == JOIN_URL
    assert asked_at <= event.stamp <= datetime.now(UTC)
    service_name = response.content.decode().split("SUMMARY:", 1)[1].split(" with ", 1)[0]
    assert event.summary == f"{service_name} with Maria Keller"
    assert service_name.startswith("Career guidance")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["etag"].startswith('W/"')

    as_consultant = event_of(
        await client.get(_path(session_id), headers=tokens.headers("consultant", sub=consultant))
    )
    assert as_consultant.uid == event.uid
    assert as_consultant.summary == f"{service_name} with learner {str(learner)[:8]}"
    assert as_consultant.url == JOIN_URL

    # Operators read it too, but the link is for the parties only.
    as_operator = event_of(await client.get(_path(session_id), headers=tokens.headers("operator")))
    assert (as_operator.url, as_operator.location) == (None, None)
    assert as_operator.summary == f"{service_name}: Maria Keller and learner {str(learner)[:8]}"

    # Anyone else: 404, as GET /v1/sessions/{id} answers them.
    for headers in (tokens.headers("learner"), tokens.headers("consultant")):
        hidden = assert_problem(await client.get(_path(session_id), headers=headers), 404)
        plain = assert_problem(await client.get(f"/v1/sessions/{session_id}", headers=headers), 404)
        assert hidden["detail"] == plain["detail"]
    assert_problem(await client.get(_path(uuid.uuid4()), headers=tokens.headers("operator")), 404)
    assert_problem(await client.get(_path(session_id)), 401)
    assert row.calendar_sequence == 0


async def test_a_move_raises_the_sequence_and_a_cancel_marks_it_cancelled(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    learner = uuid.uuid4()
    consultant = await backend.consultant()
    session_id = await _booked(backend, learner, consultant, future(3))
    await _with_join_link(session_factory, session_id)
    headers = tokens.headers("learner", sub=learner)

    async def current() -> tuple[int, str, datetime, str | None, str]:
        event = event_of(await client.get(_path(session_id), headers=headers))
        assert event.session_id == session_id  # the UID never changes
        return event.sequence, event.status, event.start, event.url, event.summary

    first = await current()
    assert first[:2] == (0, "CONFIRMED")
    # The consultant has no display name: their short id instead.
    assert first[4].endswith(f" with consultant {str(consultant)[:8]}")
    await backend.move(session_id, future(4, hour=14))
    assert (await current())[:4] == (1, "CONFIRMED", future(4, hour=14), JOIN_URL)
    await backend.move(session_id, future(5, hour=8))
    assert (await current())[:4] == (2, "CONFIRMED", future(5, hour=8), JOIN_URL)
    await backend.cancel(session_id)
    cancelled = event_of(await client.get(_path(session_id), headers=headers))
    assert (cancelled.sequence, cancelled.status, cancelled.start) == (
        3,
        "CANCELLED",
        future(5, hour=8),
    )
    assert (cancelled.url, cancelled.location, cancelled.transparency) == (
        None,
        None,
        "TRANSPARENT",
    )


async def test_an_unchanged_session_answers_304(
    client: httpx.AsyncClient, tokens: TokenFactory, backend: Backend
) -> None:
    learner = uuid.uuid4()
    session_id = await _booked(backend, learner, await backend.consultant(), future(3))
    headers = tokens.headers("learner", sub=learner)
    first = await client.get(_path(session_id), headers=headers)
    etag = first.headers["etag"]

    unchanged = await client.get(_path(session_id), headers={**headers, "If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    listed = {**headers, "If-None-Match": f'"other", {etag.removeprefix("W/")}'}
    assert (await client.get(_path(session_id), headers=listed)).status_code == 304

    await backend.move(session_id, future(4))
    moved = await client.get(_path(session_id), headers={**headers, "If-None-Match": etag})
    assert moved.status_code == 200
    assert moved.headers["etag"] != etag


@pytest.mark.parametrize(
    ("learner_zone", "consultant_zone"),
    [("Asia/Tokyo", "America/New_York"), ("America/New_York", "Asia/Tokyo")],
)
async def test_the_times_land_on_each_partys_clock_across_a_dst_change(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    backend: Backend,
    learner_zone: str,
    consultant_zone: str,
) -> None:
    """New York moves its clocks on 14 March 2027, Tokyo never: the same 14:00 UTC is
    09:00 and then 10:00 in New York, 23:00 both times in Tokyo. The event says UTC,
    and converting it gives what the session's own ``learner_local`` and
    ``consultant_local`` say."""
    learner = uuid.uuid4()
    consultant = await backend.consultant(time_zone=consultant_zone)
    before = datetime(2027, 3, 12, 14, tzinfo=UTC)
    after = datetime(2027, 3, 16, 14, tzinfo=UTC)
    walls = {"America/New_York": ("09:00", "10:00"), "Asia/Tokyo": ("23:00", "23:00")}
    for index, start in enumerate((before, after)):
        session_id = await _booked(
            backend, learner, consultant, start, learner_time_zone=learner_zone
        )
        headers = tokens.headers("learner", sub=learner)
        event = event_of(await client.get(_path(session_id), headers=headers))
        assert event.start == start
        detail = (await client.get(f"/v1/sessions/{session_id}", headers=headers)).json()
        for zone, local in ((learner_zone, "learner_local"), (consultant_zone, "consultant_local")):
            wall = event.start.astimezone(ZoneInfo(zone))
            assert f"{wall:%H:%M}" == walls[zone][index], (zone, wall)
            assert wall == datetime.fromisoformat(detail[local]["start_time"])
            assert wall.isoformat() == detail[local]["start_time"]
