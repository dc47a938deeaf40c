"""``POST /v1/webhooks/meeting-platform``: signed attendance events become workflow signals.

No bearer token: the HMAC signature is the authentication. Each event takes effect
once: its id is recorded ``received`` in ``inbound_webhook_events`` (committed at
once), the workflow is signalled with no transaction open and within
``SIGNAL_TIMEOUT``, and the record is then marked ``delivered``. A platform retry
after a failure finds it still ``received`` and signals again; one after success
is acknowledged without effect. Two copies arriving together may both signal: the
workflow keeps the first time it is told of each thing (a start, a join, an end),
so the event still takes effect once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from temporalio.service import RPCError

from api.deps import ContainerDep, SessionDep, SettingsDep
from api.errors import InvalidSignature, PayloadTooLarge, ServiceUnavailable
from api.meeting_signals import signal_meeting_event
from api.openapi import problems
from core.vocabulary import InboundEventState
from db import inbound_events
from integrations import meeting_webhooks
from integrations.meeting_webhooks import MeetingPlatformEvent, SignatureError

logger = logging.getLogger(__name__)
router = APIRouter(tags=["inbound webhooks"])

SOURCE = "meeting_platform"
MAX_BODY_BYTES = 64 * 1024
SIGNAL_TIMEOUT = timedelta(seconds=5)
"""A signal is one quick RPC; far longer means Temporal is in trouble: answer 503."""

MeetingSignaller = Callable[[uuid.UUID, MeetingPlatformEvent], Awaitable[bool]]
"""Tells a request's workflow about a meeting event; ``False``: the workflow has ended."""


class InboundAck(BaseModel):
    status: Literal["accepted", "duplicate", "ignored"]
    reason: Literal["unknown_meeting", "request_finished"] | None = None


async def get_meeting_signaller(container: ContainerDep) -> MeetingSignaller:
    client = container.temporal

    async def signal(request_id: uuid.UUID, event: MeetingPlatformEvent) -> bool:
        return await signal_meeting_event(client, request_id, event)

    return signal


SignallerDep = Annotated[MeetingSignaller, Depends(get_meeting_signaller)]


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"A meeting event is at most {MAX_BODY_BYTES} bytes.")
    return bytes(body)


def _parse(body: bytes) -> MeetingPlatformEvent:
    try:
        return MeetingPlatformEvent.model_validate_json(body)
    except ValidationError as exc:
        # Rendered like any other invalid body: a 422 problem listing the errors.
        errors = [
            {**error, "loc": ("body", *error["loc"])}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise RequestValidationError(errors) from exc


@router.post(
    "/v1/webhooks/meeting-platform",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Receive a signed event from the meeting platform",
    description=(
        "Signed with HMAC-SHA256 over `<X-Meeting-Timestamp>.<raw body>` "
        "(`X-Meeting-Signature: v1=<hex>`). 202 when accepted (or ignored: unknown "
        "meeting, finished request); 200 when the event id was already processed."
    ),
    responses={
        200: {"description": "Already processed; nothing done again"},
        **problems(
            (401, "Missing, forged or stale signature"),
            (413, f"A body over {MAX_BODY_BYTES} bytes"),
            (422, "The body is not a meeting event; `errors` lists why"),
            (503, "Not configured, or Temporal unreachable: retry later"),
        ),
    },
)
async def receive_meeting_event(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    signal: SignallerDep,
) -> InboundAck:
    if settings.meeting_webhook_secret is None:
        raise ServiceUnavailable("Inbound meeting-platform webhooks are not configured.")
    body = await _read_body(request)
    try:
        meeting_webhooks.verify(
            body,
            timestamp=request.headers.get(meeting_webhooks.TIMESTAMP_HEADER),
            signature=request.headers.get(meeting_webhooks.SIGNATURE_HEADER),
            secret=settings.meeting_webhook_secret.get_secret_value(),
            tolerance=settings.meeting_webhook_tolerance,
        )
    except SignatureError as exc:
        raise InvalidSignature(str(exc)) from exc
    event = _parse(body)

    # Each step its own short transaction: nothing is held open across the signal,
    # which may take long (the outbox feed waits for every open transaction).
    found = await inbound_events.session_for_meeting(session, event.meeting_id)
    if found is None:
        await session.commit()
        logger.info("meeting event %s for unknown meeting %s ignored", event.id, event.meeting_id)
        return InboundAck(status="ignored", reason="unknown_meeting")
    state = await inbound_events.record_received(
        session,
        source=SOURCE,
        external_id=event.id,
        event_type=event.type.value,
        session_id=found.session_id,
    )
    await session.commit()
    if state is InboundEventState.DELIVERED:
        response.status_code = status.HTTP_200_OK
        return InboundAck(status="duplicate")
    try:
        async with asyncio.timeout(SIGNAL_TIMEOUT.total_seconds()):
            delivered = await signal(found.request_id, event)
    except (RPCError, RuntimeError, TimeoutError) as exc:
        # Still ``received``: the platform's retry signals again.
        logger.warning("meeting event %s not forwarded: %s", event.id, exc)
        raise ServiceUnavailable("The workflow service is unreachable; retry later.") from exc
    await inbound_events.mark_delivered(session, source=SOURCE, external_id=event.id)
    await session.commit()
    if not delivered:
        return InboundAck(status="ignored", reason="request_finished")
    return InboundAck(status="accepted")
