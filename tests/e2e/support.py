"""The service over HTTP as its users drive it: operators curate the catalog,
learners submit, consultants decide. Plus waiting for a state and whole-database
invariants."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.tokens import TokenFactory

T = TypeVar("T")
Json = dict[str, Any]

REQUESTS = "/v1/consultation-requests"
SESSIONS = "/v1/sessions"
WAIT_LIMIT = 30.0


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID
    headers: dict[str, str]


async def wait_until(
    fetch: Callable[[], Awaitable[T]],
    condition: Callable[[T], bool],
    *,
    within: float = WAIT_LIMIT,
    what: str = "condition",
    every: float = 0.05,
) -> T:
    """Poll ``fetch`` until ``condition`` holds; fail with the last value after
    ``within`` seconds. Nothing outside the workflow can be awaited directly."""
    value = await fetch()
    try:
        async with asyncio.timeout(within):
            while not condition(value):
                await asyncio.sleep(every)
                value = await fetch()
    except TimeoutError:
        shown = repr(value)
        if len(shown) > 2000:
            shown = shown[:2000] + " …"
        raise AssertionError(f"{what} never held; last value: {shown}") from None
    return value


async def utc_now() -> datetime:
    return datetime.now(UTC)


async def next_whole_minute_to_book(*, at_least: timedelta, margin: timedelta) -> datetime:
    """The whole minute a booking made within ``margin`` from now will start on.

    The workflow snaps short-notice starts up to the next whole minute as of *its*
    clock; close to a minute's end that is a different minute than the one
    ``at_least`` ahead of ours, so first let such a minute end."""
    now = datetime.now(UTC)
    left_in_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1) - now
    if left_in_minute < at_least + margin:
        await asyncio.sleep(left_in_minute.total_seconds())
    return next_whole_minute(at_least=at_least)


def next_whole_minute(*, at_least: timedelta) -> datetime:
    """The first whole minute at least ``at_least`` from now: the workflow starts
    sessions it books soon on whole minutes."""
    earliest = datetime.now(UTC) + at_least
    whole = earliest.replace(second=0, microsecond=0)
    return whole if whole == earliest else whole + timedelta(minutes=1)


def seconds_until(moment: datetime) -> float:
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def days_ahead(days: float, hour: int = 9) -> datetime:
    """A whole hour some days ahead (UTC), far from any notice or cutoff."""
    day = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return day + timedelta(days=days)


class Service:
    def __init__(self, http: httpx.AsyncClient, tokens: TokenFactory) -> None:
        self.http = http
        self.tokens = tokens
        self.operator = self.actor("operator")

    def actor(self, *roles: str, user_id: uuid.UUID | None = None) -> Actor:
        user_id = user_id or uuid.uuid4()
        return Actor(user_id, self.tokens.headers(*roles, sub=user_id))

    def learner(self) -> Actor:
        return self.actor("learner")

    # --- catalog (operator) -----------------------------------------------------------

    async def service_type(
        self,
        *,
        minutes: int = 60,
        confirmation_timeout_seconds: int | None = None,
        start_interval_minutes: int | None = None,
        name: str | None = None,
    ) -> uuid.UUID:
        body: Json = {
            "name": name or f"Consultation {uuid.uuid4()}",
            "default_duration_minutes": minutes,
        }
        if confirmation_timeout_seconds is not None:
            body["confirmation_timeout_seconds"] = confirmation_timeout_seconds
        if start_interval_minutes is not None:
            body["start_interval_minutes"] = start_interval_minutes
        created = await self.http.post(
            "/v1/service-types", json=body, headers=self.operator.headers
        )
        assert created.status_code == 201, created.text
        return uuid.UUID(created.json()["id"])

    async def consultant(self) -> Actor:
        consultant = self.actor("consultant")
        profile = await self.http.put(
            f"/v1/consultants/{consultant.user_id}",
            json={"display_name": f"Consultant {consultant.user_id}"},
            headers=self.operator.headers,
        )
        assert profile.status_code in (200, 201), profile.text
        return consultant

    async def slot(self, consultant: Actor, start: datetime, end: datetime) -> uuid.UUID:
        created = await self.http.post(
            f"/v1/consultants/{consultant.user_id}/availability",
            json={"start_time": start.isoformat(), "end_time": end.isoformat()},
            headers=self.operator.headers,
        )
        assert created.status_code == 201, created.text
        return uuid.UUID(created.json()["items"][0]["id"])

    # --- requests ---------------------------------------------------------------------

    async def submit(self, learner: Actor, body: Json, *, key: str | None = None) -> httpx.Response:
        headers = dict(learner.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.http.post(REQUESTS, json=_jsonable(body), headers=headers)

    async def submitted(self, learner: Actor, body: Json, *, key: str | None = None) -> Json:
        response = await self.submit(learner, body, key=key)
        assert response.status_code == 201, response.text
        result: Json = response.json()
        return result

    async def request(self, request_id: str | uuid.UUID, actor: Actor | None = None) -> Json:
        response = await self.http.get(
            f"{REQUESTS}/{request_id}", headers=(actor or self.operator).headers
        )
        assert response.status_code == 200, response.text
        result: Json = response.json()
        return result

    async def wait_request(
        self, request_id: str | uuid.UUID, condition: Callable[[Json], bool], what: str
    ) -> Json:
        return await wait_until(lambda: self.request(request_id), condition, what=what)

    async def wait_offered(self, request_id: str | uuid.UUID, consultant: Actor) -> Json:
        return await self.wait_request(
            request_id,
            lambda r: (
                r["status"] == "pending_confirmation"
                and r["assigned_consultant_id"] == str(consultant.user_id)
            ),
            f"request offered to {consultant.user_id}",
        )

    async def act(
        self, actor: Actor, request_id: str | uuid.UUID, action: str, body: Json | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"{REQUESTS}/{request_id}/{action}",
            json=_jsonable(body) if body else None,
            headers=actor.headers,
        )

    async def book(self, learner: Actor, consultant: Actor, body: Json) -> Json:
        """Submit, confirm as ``consultant``, wait for the meeting: the session."""
        submitted = await self.submitted(learner, body)
        await self.wait_offered(submitted["id"], consultant)
        confirmed = await self.act(consultant, submitted["id"], "confirm")
        assert confirmed.status_code == 200, confirmed.text
        return await self.wait_session(
            confirmed.json()["session_id"], lambda s: s["join_url"] is not None, "meeting ready"
        )

    # --- sessions ---------------------------------------------------------------------

    async def session(self, session_id: str | uuid.UUID, actor: Actor | None = None) -> Json:
        response = await self.http.get(
            f"{SESSIONS}/{session_id}", headers=(actor or self.operator).headers
        )
        assert response.status_code == 200, response.text
        result: Json = response.json()
        return result

    async def wait_session(
        self, session_id: str | uuid.UUID, condition: Callable[[Json], bool], what: str
    ) -> Json:
        return await wait_until(lambda: self.session(session_id), condition, what=what)

    async def session_act(
        self, actor: Actor, session_id: str | uuid.UUID, action: str, body: Json | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"{SESSIONS}/{session_id}/{action}",
            json=_jsonable(body) if body else None,
            headers=actor.headers,
        )

    async def slot_status(self, consultant: Actor, slot_id: str | uuid.UUID) -> str:
        listed = await self.http.get(
            f"/v1/consultants/{consultant.user_id}/availability",
            headers=self.operator.headers,
            params={"limit": 200},
        )
        assert listed.status_code == 200, listed.text
        (status,) = [s["status"] for s in listed.json()["items"] if s["id"] == str(slot_id)]
        return str(status)


def _jsonable(body: Json) -> Json:
    return {
        key: value.isoformat()
        if isinstance(value, datetime)
        else str(value)
        if isinstance(value, uuid.UUID)
        else value
        for key, value in body.items()
    }


# --- invariants over the whole database ---------------------------------------------------

_OVERLAPPING_TAKEN_SLOTS = text(
    """
    SELECT count(*) FROM consultant_availability_slots a
      JOIN consultant_availability_slots b
        ON a.consultant_user_id = b.consultant_user_id AND a.id < b.id
       AND tstzrange(a.start_time, a.end_time) && tstzrange(b.start_time, b.end_time)
     WHERE a.status IN ('booked', 'held') AND b.status IN ('booked', 'held')
    """
)
_OVERLAPPING_SESSIONS = text(
    """
    SELECT count(*) FROM scheduled_sessions a
      JOIN scheduled_sessions b
        ON a.consultant_user_id = b.consultant_user_id AND a.id < b.id
       AND tstzrange(a.scheduled_start_time, a.scheduled_end_time)
        && tstzrange(b.scheduled_start_time, b.scheduled_end_time)
     WHERE a.status IN ('scheduled', 'in_progress') AND b.status IN ('scheduled', 'in_progress')
    """
)
_REQUESTS_WITH_SEVERAL_SESSIONS = text(
    """
    SELECT count(*) FROM (
      SELECT consultation_request_id FROM scheduled_sessions
       GROUP BY consultation_request_id HAVING count(*) > 1) AS several
    """
)
_BOOKED_SLOTS_WITHOUT_ONE_SESSION = text(
    """
    SELECT count(*) FROM consultant_availability_slots s
     WHERE s.status = 'booked'
       AND (SELECT count(*) FROM scheduled_sessions ss
             WHERE ss.availability_slot_id = s.id
               AND ss.status IN ('scheduled', 'in_progress')) <> 1
    """
)


async def assert_no_double_booking(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        found = {
            "overlapping booked/held slots": await session.scalar(_OVERLAPPING_TAKEN_SLOTS),
            "overlapping live sessions": await session.scalar(_OVERLAPPING_SESSIONS),
            "requests with several sessions": await session.scalar(_REQUESTS_WITH_SEVERAL_SESSIONS),
            "booked slots without exactly one session": await session.scalar(
                _BOOKED_SLOTS_WITHOUT_ONE_SESSION
            ),
        }
    assert found == dict.fromkeys(found, 0), found
