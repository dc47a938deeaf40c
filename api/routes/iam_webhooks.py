"""``POST /v1/webhooks/iam``: the IAM's signed "user deleted" event erases the person.

No bearer token: the signature authenticates. A repeat of the event (a retry, a
replay inside the signature's window) is harmless: the erasure is idempotent, and
one whose workflow could not start is started by the repeat.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from api.deps import ContainerDep, SessionDep, SettingsDep
from api.erasures import erase
from api.errors import InvalidSignature, PayloadTooLarge, ServiceUnavailable
from api.openapi import problems
from core.vocabulary import ErasureRequester
from integrations import iam_webhooks
from integrations.iam_webhooks import IamEvent

router = APIRouter(tags=["inbound webhooks"])

MAX_BODY_BYTES = 16 * 1024


class IamAck(BaseModel):
    status: Literal["accepted", "ignored"]


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"An IAM event is at most {MAX_BODY_BYTES} bytes.")
    return bytes(body)


def _parse(body: bytes) -> IamEvent:
    try:
        return IamEvent.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("body", *error["loc"])}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise RequestValidationError(errors) from exc


@router.post(
    "/v1/webhooks/iam",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Receive a signed event from the IAM (user deleted: erase them)",
    description=(
        "Signed with HMAC-SHA256 over `<X-IAM-Timestamp>.<raw body>` "
        "(`X-IAM-Signature: v1=<hex>`). `user.deleted` starts the person's erasure "
        "(202 accepted); other event types are ignored (202 ignored)."
    ),
    responses=problems(
        (401, "Missing, forged or stale signature"),
        (413, f"A body over {MAX_BODY_BYTES} bytes"),
        (422, "The body is not an IAM event"),
        (503, "Not configured, or Temporal unreachable: retry later"),
    ),
)
async def receive_iam_event(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    container: ContainerDep,
) -> IamAck:
    if settings.iam_webhook_secret is None:
        raise ServiceUnavailable("Inbound IAM webhooks are not configured.")
    body = await _read_body(request)
    try:
        iam_webhooks.verify(
            body,
            timestamp=request.headers.get(iam_webhooks.TIMESTAMP_HEADER),
            signature=request.headers.get(iam_webhooks.SIGNATURE_HEADER),
            secret=settings.iam_webhook_secret.get_secret_value(),
            tolerance=settings.iam_webhook_tolerance,
        )
    except iam_webhooks.SignatureError as exc:
        raise InvalidSignature(str(exc)) from exc
    event = _parse(body)
    if event.type != iam_webhooks.USER_DELETED:
        return IamAck(status="ignored")
    await erase(container, session, event.user_id, via=ErasureRequester.IAM, requested_by=None)
    return IamAck(status="accepted")
