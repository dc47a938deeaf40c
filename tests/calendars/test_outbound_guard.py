"""Calendars are fetched from public addresses only, like webhooks: a private or
metadata address is refused when the calendar is linked, and a name that resolves to
one is refused when the sync connects (ICS and CalDAV alike), before any connection
is made. The stub resolvers here answer what the test chooses; nothing leaves
loopback."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from typing import Any

import httpx
import pytest

from activities.calendars import CalendarActivities
from core.settings import Settings
from core.vocabulary import CalendarSyncOutcome
from integrations.outbound.targets import IPAddress
from tests.calendars.support import NOW, IcsServer, Served, SessionFactory, link, read
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

pytestmark = pytest.mark.usefixtures("clean_database")

PRIVATE = "10.0.0.7"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/calendar.ics",
        "http://169.254.169.254/latest/meta-data/",
        "webcal://localhost/calendar.ics",
        "https://[::ffff:10.0.0.1]/calendar.ics",
        "http://2130706433.internal/calendar.ics",
    ],
)
async def test_a_private_address_is_refused_when_linking(
    url: str, client: httpx.AsyncClient, tokens: TokenFactory, consultant: uuid.UUID
) -> None:
    response = await client.post(
        f"/v1/consultants/{consultant}/calendars",
        json={"kind": "ics", "url": url},
        headers=tokens.headers("consultant", sub=consultant),
    )
    problem = assert_problem(response, 422)
    assert "is refused" in problem["detail"]
    assert "public" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"kind": "ics", "url": "ftp://calendar.example.test/x.ics"}, "https://"),
        ({"kind": "ics", "url": "https://ada:pw@calendar.example.test/x.ics"}, "username"),
        ({"kind": "ics", "url": "not a url at all"}, "https://"),
        ({"kind": "caldav", "url": "https://dav.example.test/cal/"}, "username and a password"),
    ],
)
async def test_a_malformed_address_or_missing_credentials_are_problems(
    body: dict[str, str],
    why: str,
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    consultant: uuid.UUID,
) -> None:
    response = await client.post(
        f"/v1/consultants/{consultant}/calendars",
        json=body,
        headers=tokens.headers("consultant", sub=consultant),
    )
    assert why in assert_problem(response, 422)["detail"]


class StubResolver:
    """Answers every name with ``addresses``; records what it was asked."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = [ipaddress.ip_address(a) for a in addresses]
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        return list(self.addresses)

    def lookup(self, host: str, port: Any, *_: Any) -> list[Any]:
        self.asked.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (str(a), int(port or 0)))
            for a in self.addresses
        ]


@pytest.mark.parametrize("answers", [(PRIVATE,), ("93.184.216.34", PRIVATE)])
@pytest.mark.parametrize("kind", ["ics", "caldav"])
async def test_a_name_resolving_to_a_private_address_is_refused_at_connect_time(
    kind: str,
    answers: tuple[str, ...],
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    settings: Settings,
    consultant: uuid.UUID,
) -> None:
    stub = StubResolver(*answers)
    activities = CalendarActivities(
        session_factory, settings, resolver=stub.resolve, lookup=stub.lookup, clock=lambda: NOW
    )
    credentials = {"username": "ada", "password": "app-password"} if kind == "caldav" else {}
    calendar = await link(
        client, tokens, consultant, "http://calendar.example.test/cal", kind=kind, **credentials
    )
    try:
        result = await activities.sync(uuid.UUID(calendar["id"]))
    finally:
        await activities.aclose()

    assert result.outcome is CalendarSyncOutcome.FAILED
    assert stub.asked
    assert set(stub.asked) == {"calendar.example.test"}
    shown = await read(client, tokens, consultant, calendar["id"])
    assert shown["stale"] is True
    assert shown["last_error"] == (
        "refused: calendar.example.test resolves to an address that is not public"
    )


async def test_a_redirect_to_a_private_address_is_refused(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    ics_server: IcsServer,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
) -> None:
    ics_server.paths["/cal.ics"] = Served(
        status=302, headers=(("location", "http://169.254.169.254/latest/meta-data/"),)
    )
    calendar = await link(client, tokens, consultant, ics_server.url("/cal.ics"))
    result = await calendar_activities.sync(uuid.UUID(calendar["id"]))
    assert result.outcome is CalendarSyncOutcome.FAILED
    shown = await read(client, tokens, consultant, calendar["id"])
    assert shown["last_error"] == "refused: 169.254.169.254 is not a public address"
