"""Standard Webhooks signing: ``whsec_`` secrets and the three ``webhook-*`` headers.

Receivers verify with any Standard Webhooks library (``Webhook(secret).verify``).
"""

from __future__ import annotations

import base64
import math
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105  (the scheme's marker, not a secret)
# 256 bits, the key size of the HMAC-SHA256 the scheme uses.
SECRET_BYTES = 32


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(
    signing_secrets: Sequence[str], message_id: str, timestamp: datetime, body: str
) -> dict[str, str]:
    """Headers for one attempt; several secrets (during a rotation) give several signatures.

    The scheme signs ``id.timestamp.body``; the receiver rejects old timestamps, so
    every attempt is signed afresh.
    """
    if not signing_secrets:
        raise ValueError("at least one signing secret is needed")
    # The library reads the datetime's wall clock as UTC, so hand it UTC.
    utc = timestamp.astimezone(UTC)
    signatures = " ".join(Webhook(s).sign(message_id, utc, body) for s in signing_secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(math.floor(utc.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
