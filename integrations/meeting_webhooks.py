"""Inbound meeting-platform webhooks: signature check and event parsing (no I/O).

The platform signs ``f"{timestamp}.{raw body}"`` with HMAC-SHA256 under a secret
shared with us and sends::

    X-Meeting-Timestamp: 1767225600          (unix seconds)
    X-Meeting-Signature: v1=<hex digest>     (several, comma separated, while it rotates)

Signing the timestamp with the body and refusing timestamps outside a window makes a
captured request useless after a few minutes; within the window, the event id
deduplicates (see the route).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from core.vocabulary import ParticipantRole

TIMESTAMP_HEADER = "X-Meeting-Timestamp"
SIGNATURE_HEADER = "X-Meeting-Signature"
SIGNATURE_VERSION = "v1"


class SignatureError(Exception):
    """The request is not provably from the platform; the message says why."""


class StaleTimestamp(SignatureError):
    pass


def sign(body: bytes, timestamp: str, secret: str) -> str:
    """The ``X-Meeting-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def verify(
    body: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    secret: str,
    tolerance: timedelta,
    now: datetime | None = None,
    timestamp_header: str = TIMESTAMP_HEADER,
    signature_header: str = SIGNATURE_HEADER,
) -> None:
    """Raise ``SignatureError`` unless a ``v1`` signature matches and the timestamp is fresh.

    The header names only word the errors: the IAM's events are signed the same way
    under headers of their own (``integrations.iam_webhooks``)."""
    if not timestamp or not signature:
        raise SignatureError(f"{timestamp_header} and {signature_header} are required.")
    expected = sign(body, timestamp, secret).encode()
    offered = [part.strip() for part in signature.split(",")]
    # Compare against every offered signature, in constant time each, without
    # stopping early: the time taken says nothing about which one came close.
    matched = False
    for candidate in offered:
        matched |= hmac.compare_digest(candidate.encode(), expected)
    if not matched:
        raise SignatureError("The signature does not match the body.")
    # Checked after the signature, so only the platform learns about its clock skew.
    try:
        sent_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError(f"{timestamp_header} is not unix seconds.") from exc
    current = now or datetime.now(UTC)
    if abs(current - sent_at) > tolerance:
        raise StaleTimestamp(
            f"{timestamp_header} is more than {tolerance.total_seconds():g} s away from now."
        )


class MeetingEventType(StrEnum):
    MEETING_STARTED = "meeting.started"
    PARTICIPANT_JOINED = "participant.joined"
    PARTICIPANT_LEFT = "participant.left"
    MEETING_ENDED = "meeting.ended"

    @property
    def concerns_participant(self) -> bool:
        return self in (MeetingEventType.PARTICIPANT_JOINED, MeetingEventType.PARTICIPANT_LEFT)


class Participant(BaseModel):
    # The platform may send more about a participant (names, ...): not ours to keep.
    model_config = ConfigDict(extra="ignore")

    role: ParticipantRole


class MeetingPlatformEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255, description="Unique per event; for dedupe.")
    type: MeetingEventType
    meeting_id: str = Field(min_length=1, max_length=255)
    occurred_at: AwareDatetime
    participant: Participant | None = None

    @model_validator(mode="after")
    def _participant_when_needed(self) -> Self:
        if self.type.concerns_participant and self.participant is None:
            raise ValueError(f"a {self.type.value} event names its participant")
        return self
