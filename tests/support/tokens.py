"""Mint bearer tokens the way the platform's IAM would, including broken ones."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from core.settings import Settings


@dataclass
class TokenFactory:
    settings: Settings

    def claims(self, roles: list[str], sub: uuid.UUID | str, ttl: int = 600) -> dict[str, Any]:
        now = int(time.time())
        return {
            "sub": str(sub),
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "iat": now,
            "exp": now + ttl,
            self.settings.jwt_roles_claim: roles,
        }

    def encode(self, claims: dict[str, Any]) -> str:
        assert self.settings.jwt_secret is not None
        return jwt.encode(claims, self.settings.jwt_secret.get_secret_value(), algorithm="HS256")

    def token(self, *roles: str, sub: uuid.UUID | str | None = None, **overrides: Any) -> str:
        """A signed token; an override of ``None`` removes that claim."""
        claims = self.claims(list(roles), sub or uuid.uuid4())
        claims.update(overrides)
        return self.encode({k: v for k, v in claims.items() if v is not None})

    def headers(
        self, *roles: str, sub: uuid.UUID | str | None = None, **overrides: Any
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles, sub=sub, **overrides)}"}
