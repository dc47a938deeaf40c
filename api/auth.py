"""Bearer JWT verification: allow-listed algorithms, required ``iss``/``aud``/``exp``/
``iat``/``sub``, capped leeway and token lifetime.

Development uses an HS256 shared secret; production points at the IAM's JWKS URL
(see ``api/jwks.py`` for how its keys are fetched and kept). The two are never mixed,
so an attacker cannot sign an HS256 token with a public key (the classic
algorithm-confusion attack).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from api.errors import ServiceUnavailable, Unauthorized
from api.jwks import Clock, JwksCache, KeySetUnavailable, UnknownSigningKey
from core.settings import ASYMMETRIC_JWT_ALGORITHMS, SYMMETRIC_JWT_ALGORITHMS, Settings

DEFAULT_JWKS_ALGORITHM = "RS256"
DEFAULT_HMAC_ALGORITHM = "HS256"


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

    def __init__(self, settings: Settings, *, clock: Clock = time.monotonic) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._roles_claim = settings.jwt_roles_claim
        self._leeway = settings.jwt_leeway
        self._max_lifetime = settings.jwt_max_token_lifetime.total_seconds()
        self._jwks: JwksCache | None = None
        self._secret: str | None = None
        if settings.jwt_jwks_url is not None:
            self._algorithms = [
                a for a in settings.jwt_algorithms if a in ASYMMETRIC_JWT_ALGORITHMS
            ]
            if not self._algorithms:
                self._algorithms = [DEFAULT_JWKS_ALGORITHM]
            self._jwks = JwksCache(
                settings.jwt_jwks_url,
                ttl=settings.jwt_jwks_cache_ttl,
                max_stale=settings.jwt_jwks_max_stale,
                refetch_interval=settings.jwt_jwks_refetch_interval,
                fetch_timeout=settings.jwt_jwks_fetch_timeout,
                clock=clock,
            )
        elif settings.jwt_secret is not None:
            self._algorithms = [a for a in settings.jwt_algorithms if a in SYMMETRIC_JWT_ALGORITHMS]
            if not self._algorithms:
                self._algorithms = [DEFAULT_HMAC_ALGORITHM]
            self._secret = settings.jwt_secret.get_secret_value()
        else:
            raise ValueError("configure BOOKING_JWT_SECRET or BOOKING_JWT_JWKS_URL")

    @property
    def jwks(self) -> JwksCache | None:
        return self._jwks

    async def aclose(self) -> None:
        if self._jwks is not None:
            await self._jwks.aclose()

    async def _key_for(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The token is malformed.") from exc
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            # Before any key is looked up: nothing a token names is trusted unchecked.
            raise Unauthorized("The token is invalid.")
        if self._jwks is None:
            return self._secret
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The token names no signing key (kid).")
        try:
            return await self._jwks.key_for(kid, algorithm)
        except KeySetUnavailable as exc:
            # The IAM's key set is unreachable: the token may be fine, so this is an
            # outage the client can retry, not a bad token.
            raise ServiceUnavailable(
                "The identity provider's signing keys cannot be fetched; retry shortly.",
                headers={"Retry-After": "5"},
            ) from exc
        except UnknownSigningKey as exc:
            raise Unauthorized("The token's signing key is unknown.") from exc

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
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized("The token is not meant for this service (audience).") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("The token was issued by an unknown issuer.") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"The token lacks the required claim {exc.claim!r}.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("The token is not valid yet (iat or nbf).") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The token is invalid.") from exc
        self._check_lifetime(claims)
        return self._principal(claims)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """A token valid for longer than the IAM would ever issue is refused: stolen or
        forged long-lived tokens must not outlast a key rotation by months."""
        lifetime = float(claims["exp"]) - float(claims["iat"])
        if lifetime > self._max_lifetime:
            raise Unauthorized(
                f"The token's lifetime (exp - iat) exceeds {self._max_lifetime:.0f} s."
            )

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
