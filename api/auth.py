"""Bearer JWT verification: pinned algorithms, required ``iss``/``aud``/``exp``/``sub``.

Development uses an HS256 shared secret; production points at the IAM's JWKS URL.
The two are never mixed, so an attacker cannot sign an HS256 token with a public key
(the classic algorithm-confusion attack).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import anyio
import jwt

from api.errors import ServiceUnavailable, Unauthorized
from core.settings import Settings

SYMMETRIC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})


class Role(StrEnum):
    LEARNER = "learner"
    CONSULTANT = "consultant"
    OPERATOR = "operator"
    # A machine consumer of the event feed (billing, notifications); grants nothing else.
    EVENTS_READER = "events:read"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the IAM user id and the roles this service understands."""

    user_id: uuid.UUID
    roles: frozenset[Role]

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def is_operator(self) -> bool:
        return Role.OPERATOR in self.roles


class TokenVerifier:
    """Verifies bearer tokens against either the shared secret or the JWKS."""

    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._roles_claim = settings.jwt_roles_claim
        self._leeway = settings.jwt_leeway
        self._jwks: jwt.PyJWKClient | None = None
        self._secret: str | None = None
        if settings.jwt_jwks_url is not None:
            self._algorithms = [a for a in settings.jwt_algorithms if a not in SYMMETRIC_ALGORITHMS]
            if not self._algorithms:
                self._algorithms = ["RS256"]
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
        elif settings.jwt_secret is not None:
            self._algorithms = [a for a in settings.jwt_algorithms if a in SYMMETRIC_ALGORITHMS]
            if not self._algorithms:
                self._algorithms = ["HS256"]
            self._secret = settings.jwt_secret.get_secret_value()
        else:
            raise ValueError("configure BOOKING_JWT_SECRET or BOOKING_JWT_JWKS_URL")

    async def _key_for(self, token: str) -> Any:
        if self._jwks is None:
            return self._secret
        jwks = self._jwks
        try:
            # PyJWKClient fetches over blocking HTTP; keep it off the event loop.
            signing_key = await anyio.to_thread.run_sync(jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            # The IAM's key set is unreachable: the token may be fine, so this is an
            # outage the client can retry, not a bad token.
            raise ServiceUnavailable(
                "The identity provider's signing keys cannot be fetched; retry shortly.",
                headers={"Retry-After": "5"},
            ) from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("The token's signing key is unknown.") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The token is malformed.") from exc
        return signing_key.key

    async def verify(self, token: str) -> Principal:
        key = await self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized("The token is not meant for this service (audience).") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("The token was issued by an unknown issuer.") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"The token lacks the required claim {exc.claim!r}.") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The token is invalid.") from exc
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthorized("The token's subject is not a user id (UUID).") from exc
        raw_roles = claims.get(self._roles_claim, [])
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()
        if not isinstance(raw_roles, list):
            raise Unauthorized(f"The token's {self._roles_claim!r} claim is not a list.")
        known = {role.value for role in Role}
        roles = frozenset(Role(r) for r in raw_roles if isinstance(r, str) and r in known)
        return Principal(user_id=user_id, roles=roles)
