"""Development bearer tokens, shaped like the ones the platform's IAM issues.

Only meaningful with an HS256 shared secret: when the API verifies tokens against a
JWKS URL, tokens come from the identity provider and minting them here would only
produce tokens the API rejects.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt

from core.settings import Settings

ALGORITHM = "HS256"


class Role(StrEnum):
    LEARNER = "learner"
    CONSULTANT = "consultant"
    OPERATOR = "operator"


class TokenConfigError(RuntimeError):
    """The settings do not allow minting tokens locally."""


def mint_token(
    settings: Settings,
    *,
    subject: uuid.UUID,
    roles: Sequence[Role],
    ttl: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> str:
    """An HS256 JWT with ``sub``, ``iss``, ``aud``, ``iat``, ``exp`` and the roles claim."""
    if settings.jwt_jwks_url is not None:
        raise TokenConfigError(
            "BOOKING_JWT_JWKS_URL is configured: the API accepts tokens from the identity "
            "provider only, so locally minted tokens would be rejected"
        )
    if settings.jwt_secret is None:
        raise TokenConfigError("no BOOKING_JWT_SECRET is configured; cannot mint tokens")
    if ALGORITHM not in settings.jwt_algorithms:
        raise TokenConfigError(
            f"BOOKING_JWT_ALGORITHMS does not allow {ALGORITHM}; the API would reject the token"
        )
    if ttl <= timedelta(0):
        raise ValueError("the token lifetime must be positive")
    if ttl > settings.jwt_max_token_lifetime:
        raise TokenConfigError(
            f"a lifetime of {ttl.total_seconds():.0f} s exceeds BOOKING_JWT_MAX_TOKEN_LIFETIME "
            f"({settings.jwt_max_token_lifetime.total_seconds():.0f} s); the API would reject it"
        )
    issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
    claims = {
        "sub": str(subject),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": issued_at,
        "exp": issued_at + ttl,
        settings.jwt_roles_claim: [str(role) for role in dict.fromkeys(roles)],
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)
