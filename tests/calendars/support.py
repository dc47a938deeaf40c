"""What the calendar tests share: a loopback HTTP server serving ICS files the way a
calendar provider does (ETag, Last-Modified, 304, or failures on demand), a
consultant on the Berlin clock, and the sync activities on a fixed clock."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.calendars import busy_sets
from db.models import ConsultantProfile
from tests.support.loopback import read_request

FEEDS = Path(__file__).parent / "feeds"
NOW = datetime(2027, 3, 1, tzinfo=UTC)
"""The sync's clock: the feeds' events lie in the weeks after it."""
BERLIN = "Europe/Berlin"
LAST_MODIFIED = "Mon, 01 Feb 2027 12:00:00 GMT"

SessionFactory = async_sessionmaker[AsyncSession]


def feed(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


@dataclass
class Served:
    """One path's answer: a body (with validators) or a failure."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/calendar; charset=utf-8"
    validators: bool = True
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass
class IcsServer:
    """An ASGI app serving ``paths``; records each request's path and headers."""

    paths: dict[str, Served] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base_url: str = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        _, headers = await read_request(scope, receive)
        path = scope["path"] + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        self.requests.append((path, headers))
        served = self.paths.get(path)
        if served is None:
            await _answer(send, 404, b"not found", [])
            return
        extra: list[tuple[bytes, bytes]] = []
        if served.status == 200 and served.validators:
            extra = [(b"etag", served.etag.encode()), (b"last-modified", LAST_MODIFIED.encode())]
            if headers.get("if-none-match") == served.etag:
                await _answer(send, 304, b"", extra)
                return
        extra += [(name.encode(), value.encode()) for name, value in served.headers]
        await _answer(
            send,
            served.status,
            served.body,
            [(b"content-type", served.content_type.encode()), *extra],
        )


async def _answer(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def berlin_consultant(sessions: SessionFactory) -> uuid.UUID:
    consultant = uuid.uuid4()
    async with sessions() as session, session.begin():
        session.add(ConsultantProfile(consultant_user_id=consultant, time_zone=BERLIN))
    return consultant


def utc(text: str) -> datetime:
    """``"2027-03-01 09:00"`` in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def stored(sessions: SessionFactory, calendar_id: uuid.UUID) -> list[tuple[str, str, str]]:
    """The calendar's busy set as (source, start, end), times as ``YYYY-MM-DD HH:MM``."""
    async with sessions() as session:
        rows = await busy_sets.busy_of(session, calendar_id)
    return [
        (
            source,
            f"{i.start.astimezone(UTC):%Y-%m-%d %H:%M}",
            f"{i.end.astimezone(UTC):%Y-%m-%d %H:%M}",
        )
        for source, i in rows
    ]


async def link(
    http: Any, tokens: Any, consultant: uuid.UUID, url: str, *, kind: str = "ics", **fields: Any
) -> dict[str, Any]:
    """Link a calendar through the API as the consultant; returns the calendar."""
    response = await http.post(
        f"/v1/consultants/{consultant}/calendars",
        json={"kind": kind, "url": url, **fields},
        headers=tokens.headers("consultant", sub=consultant),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def read(http: Any, tokens: Any, consultant: uuid.UUID, calendar_id: str) -> dict[str, Any]:
    response = await http.get(
        f"/v1/consultants/{consultant}/calendars/{calendar_id}",
        headers=tokens.headers("consultant", sub=consultant),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
