"""What the users do during a chaos run, as patient real clients would.

Learners submit with an ``Idempotency-Key`` and send the same submission again
after a 503 or 504 (the API's "retry shortly" and "not confirmed in time"); some
cancel once their request is offered. Consultants watch their inbox and confirm
what is offered to them. Any other answer than the expected ones fails the run:
a 500, or a refusal that a correct service would not give.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from tests.e2e.support import REQUESTS, Actor, Json, Service, wait_until

RETRY_AFTER = {503, 504}
"""Answers after which a client tries again: nothing happened, or it is unknown."""

PATIENCE = 120.0
"""Seconds a client keeps trying one step before the run fails."""

POLL = 0.3


@dataclass
class Booking:
    index: int
    learner: Actor
    consultant: Actor
    slot_id: uuid.UUID
    cancel: bool
    request_id: str | None = None

    @property
    def key(self) -> str:
        return f"chaos-booking-{self.index}"


@dataclass
class Answers:
    """Every status code the clients got, for the report and the no-500 check."""

    seen: Counter[int] = field(default_factory=Counter)

    async def until_answered(self, send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """Send until the answer is not one to retry after."""
        async with asyncio.timeout(PATIENCE):
            while True:
                response = await send()
                self.seen[response.status_code] += 1
                if response.status_code not in RETRY_AFTER:
                    return response
                await asyncio.sleep(_retry_after(response))


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "0.5")), 2.0)
    except ValueError:
        return 0.5


async def submit(
    service: Service, answers: Answers, booking: Booking, service_type: uuid.UUID
) -> None:
    body = {"service_type_id": service_type, "slot_id": booking.slot_id}
    response = await answers.until_answered(
        lambda: service.submit(booking.learner, body, key=booking.key)
    )
    assert response.status_code in (200, 201), response.text
    booking.request_id = response.json()["id"]


async def cancel_once_offered(service: Service, answers: Answers, booking: Booking) -> None:
    """The learner changes their mind after the request was offered to the consultant."""
    assert booking.request_id is not None
    await wait_until(
        lambda: _status(service, answers, booking),
        lambda status: status == "pending_confirmation",
        within=PATIENCE,
        what=f"request {booking.request_id} offered",
        every=POLL,
    )
    async with asyncio.timeout(PATIENCE):
        while True:
            response = await answers.until_answered(
                lambda: service.act(booking.learner, booking.request_id or "", "cancel")
            )
            if response.status_code == 200:
                return
            # 409: another change was still in progress, or an earlier attempt whose
            # answer was lost already cancelled it.
            assert response.status_code == 409, response.text
            if await _status(service, answers, booking) == "cancelled":
                return
            await asyncio.sleep(POLL)


async def _status(service: Service, answers: Answers, booking: Booking) -> str:
    response = await answers.until_answered(
        lambda: service.http.get(
            f"{REQUESTS}/{booking.request_id}", headers=booking.learner.headers
        )
    )
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def confirm_offers(
    service: Service,
    answers: Answers,
    consultant: Actor,
    to_confirm: set[str],
    stop: asyncio.Event,
) -> None:
    """A consultant's inbox loop: confirm every offered request in ``to_confirm``
    (filled in as requests are submitted) until ``stop``."""
    while not stop.is_set():
        for request in await _offered(service, answers, consultant):
            if request["id"] not in to_confirm:
                continue
            confirm = functools.partial(service.act, consultant, request["id"], "confirm")
            response = await answers.until_answered(confirm)
            # 409: a change in progress, or an earlier confirmation already took
            # effect; the inbox shows it again next round if it is still offered.
            assert response.status_code in (200, 409), response.text
        await asyncio.sleep(POLL)


async def _offered(service: Service, answers: Answers, consultant: Actor) -> list[Json]:
    response = await answers.until_answered(
        lambda: service.http.get(
            REQUESTS,
            params={"status": "pending_confirmation", "limit": 100},
            headers=consultant.headers,
        )
    )
    assert response.status_code == 200, response.text
    items: list[Json] = response.json()["items"]
    return items
