"""A consultant's calendars as personal data: the export lists them without their
address, password or sync bookkeeping; an erasure deletes them with their busy time."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select

from activities.calendars import CalendarActivities
from core.vocabulary import PersonalDataSection
from db import erasure, personal_data
from db.models import BusyInterval, ConsultantCalendar
from tests.calendars.support import IcsServer, Served, SessionFactory, feed, link
from tests.support.tokens import TokenFactory

pytestmark = pytest.mark.usefixtures("clean_database")


async def test_the_export_lists_calendars_without_secrets(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    consultant: uuid.UUID,
) -> None:
    await link(
        client,
        tokens,
        consultant,
        "https://dav.example.test/calendars/ada/secret-path-41/",
        kind="caldav",
        username="ada",
        password="app-password-77",
        display_name="Work",
    )
    async with session_factory() as session:
        page = await personal_data.section_page(
            session, PersonalDataSection.CALENDARS, consultant, after=None, limit=10
        )
    (item,) = page.items
    assert item["display_name"] == "Work"
    assert item["username"] == "ada"
    assert item["address_hint"] == "https://dav.example.test/…"
    for hidden in ("address_ciphertext", "password_ciphertext", "sync_token", "ctag", "etag"):
        assert hidden not in item
    assert "secret-path-41" not in str(item)
    assert "app-password-77" not in str(item)


async def test_erasing_a_consultant_deletes_their_calendars_and_busy_time(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    ics_server: IcsServer,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
) -> None:
    ics_server.paths["/cal.ics"] = Served(feed("berlin_week.ics"))
    calendar = await link(client, tokens, consultant, ics_server.url("/cal.ics"))
    await calendar_activities.sync(uuid.UUID(calendar["id"]))

    subject = erasure.Subject(person_id=consultant, pseudonym=uuid.uuid4(), requested_by=None)
    async with session_factory() as session, session.begin():
        assert await erasure.delete_calendars(session, subject) == 1
    async with session_factory() as session:
        calendars = await session.scalar(select(func.count()).select_from(ConsultantCalendar))
        busy = await session.scalar(select(func.count()).select_from(BusyInterval))
    assert (calendars, busy) == (0, 0)
