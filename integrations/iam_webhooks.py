"""Inbound IAM events: the identity provider tells us a user was deleted.

Signed like the meeting platform's events (HMAC-SHA256 of ``f"{timestamp}.{raw body}"``
under a shared secret, ``v1=<hex>``), under headers of its own::

    X-IAM-Timestamp: 1767225600
    X-IAM-Signature: v1=<hex digest>
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from integrations import meeting_webhooks

TIMESTAMP_HEADER = "X-IAM-Timestamp"
SIGNATURE_HEADER = "X-IAM-Signature"
USER_DELETED = "user.deleted"

sign = meeting_webhooks.sign
SignatureError = meeting_webhooks.SignatureError


def verify(
    body: bytes, *, timestamp: str | None, signature: str | None, secret: str, tolerance: timedelta
) -> None:
    meeting_webhooks.verify(
        body,
        timestamp=timestamp,
        signature=signature,
        secret=secret,
        tolerance=tolerance,
        timestamp_header=TIMESTAMP_HEADER,
        signature_header=SIGNATURE_HEADER,
    )


class IamEvent(BaseModel):
    """What the IAM sends; only ``user.deleted`` has an effect here."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=64, examples=[USER_DELETED])
    user_id: uuid.UUID
    occurred_at: AwareDatetime
