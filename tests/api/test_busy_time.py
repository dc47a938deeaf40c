"""Busy time through the API: the search leaves out every start that meets a linked
calendar's busy time, and the submit check refuses such a start naming the calendar
(``start-unavailable`` with ``reason: calendar_busy``), so the two agree."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from api.errors import StartUnavailable
from core.settings import Settings
from tests.activities.builders import Backend
from tests.api.test_scheduling_policies import TODAY, Sessions, offered, submit_check
from tests.api.test_search import add_consultant, add_service_type, add_slots
from tests.support.tokens import TokenFactory


async def test_busy_time_is_left_out_of_the_search_and_refused_at_submit(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: Sessions, settings: Settings
) -> None:
    service_type = await add_service_type(session_factory, minutes=60, specialization=None)
    consultant = await add_consultant(session_factory)
    day = (TODAY + timedelta(days=3)).replace(hour=8)
    (block,) = await add_slots(session_factory, consultant, (day, day + timedelta(hours=4)))
    # Busy from 09:30 to 10:15 elsewhere.
    await Backend(session_factory).busy(
        consultant, day + timedelta(hours=1.5), day + timedelta(hours=2.25)
    )

    starts = await offered(client, tokens, service_type)

    quarter = timedelta(minutes=15)
    assert starts == [day, day + quarter, day + 2 * quarter] + [
        day + timedelta(hours=2.25) + quarter * n for n in range(4)
    ]
    window = await submit_check(session_factory, settings, service_type, block, starts[-1])
    assert window.start == starts[-1]
    with pytest.raises(StartUnavailable) as busy:
        await submit_check(session_factory, settings, service_type, block, day + timedelta(hours=1))
    assert busy.value.extensions["reason"] == "calendar_busy"
    assert "calendar shows them busy" in busy.value.detail
