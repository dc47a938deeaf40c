"""The IAM's signing keys (JWKS), fetched over async HTTP and kept with a TTL.

What it guarantees, and why:

- **Cached keys cost nothing.** A token whose key is in a fresh set is verified
  without any I/O and without a thread hop.
- **Keys expire.** A set older than ``ttl`` is fetched again on the next use, so a key
  the IAM revoked stops being trusted within ``ttl``.
- **An outage does not lock everyone out.** A failed fetch keeps the last good set,
  which stays usable for ``max_stale`` past its TTL; only then do requests answer 503.
- **Nobody can make it fetch at will.** A token naming an unknown ``kid`` triggers a
  fetch only if none was attempted within ``refetch_interval`` (failed ones
  included); otherwise it is refused as an unknown key at once. Concurrent requests
  share one fetch. This runs before the per-user rate limit (the user is not known
  until the token is verified), so it must bound itself.
- **Fetches are short.** ``fetch_timeout`` bounds each one, redirects are not
  followed, and a document over ``MAX_DOCUMENT_BYTES`` is refused.
- **Only signing keys of an asymmetric type are used**, each with the algorithm the
  token names, which must be allowed and match the key's own ``alg`` when it has one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import jwt

logger = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 256 * 1024
SYMMETRIC_KEY_TYPE = "oct"

Clock = Callable[[], float]


class KeySetUnavailable(Exception):
    """No usable key set: never fetched, or the last good one is too old."""


class UnknownSigningKey(Exception):
    """The key set has no signing key usable for this ``kid`` and algorithm."""


class KeySetFetchError(Exception):
    """One fetch failed; the message says how (for the log only)."""


@dataclass
class _KeySet:
    fetched_at: float
    keys: dict[str, dict[str, Any]]
    prepared: dict[tuple[str, str], jwt.PyJWK] = field(default_factory=dict)


def _signing_keys(document: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySetFetchError("the document is not a JWK set (no 'keys' list)")
    keys: dict[str, dict[str, Any]] = {}
    for key in document["keys"]:
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
            continue
        if key.get("kty") == SYMMETRIC_KEY_TYPE or key.get("use", "sig") != "sig":
            continue
        keys[key["kid"]] = key
    return keys


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        ttl: timedelta,
        max_stale: timedelta,
        refetch_interval: timedelta,
        fetch_timeout: timedelta,
        http: httpx.AsyncClient | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._url = url
        self._ttl = ttl.total_seconds()
        self._max_stale = max_stale.total_seconds()
        self._refetch_interval = refetch_interval.total_seconds()
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=fetch_timeout.total_seconds(), follow_redirects=False
        )
        self._clock = clock
        self._current: _KeySet | None = None
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Fetches attempted so far (for tests and metrics)."""

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def key_for(self, kid: str, algorithm: str) -> jwt.PyJWK:
        """The key to verify a token signed with ``algorithm`` under ``kid``."""
        current = self._current
        if current is None or self._clock() - current.fetched_at >= self._ttl:
            current = await self._refresh_if_allowed()
        if current is None or kid not in current.keys:
            # A new key the IAM has just started to use, or a made-up kid.
            current = await self._refresh_if_allowed()
        if current is None:
            raise KeySetUnavailable("the identity provider's key set cannot be fetched")
        jwk = current.keys.get(kid)
        if jwk is None:
            raise UnknownSigningKey(f"no signing key {kid!r} in the key set")
        return self._prepared(current, kid, jwk, algorithm)

    def _prepared(
        self, current: _KeySet, kid: str, jwk: dict[str, Any], algorithm: str
    ) -> jwt.PyJWK:
        prepared = current.prepared.get((kid, algorithm))
        if prepared is not None:
            return prepared
        if jwk.get("alg", algorithm) != algorithm:
            raise UnknownSigningKey(f"key {kid!r} is for {jwk['alg']}, not {algorithm}")
        try:
            prepared = jwt.PyJWK(jwk, algorithm=algorithm)
        except jwt.PyJWTError as exc:
            # The key's type does not fit the algorithm (an EC key for RS256, ...).
            raise UnknownSigningKey(f"key {kid!r} cannot verify {algorithm}") from exc
        current.prepared[(kid, algorithm)] = prepared
        return prepared

    def _usable(self, now: float) -> _KeySet | None:
        current = self._current
        if current is None or now - current.fetched_at >= self._ttl + self._max_stale:
            return None
        return current

    async def _refresh_if_allowed(self) -> _KeySet | None:
        """Fetch unless a fetch was attempted within the refetch interval; either way
        the set to use now (the last good one if the fetch failed), or None."""
        requested_at = self._clock()
        async with self._lock:
            now = self._clock()
            last = self._last_attempt
            if last is not None and (last >= requested_at or now - last < self._refetch_interval):
                # Someone fetched while we waited for the lock, or one did recently.
                return self._usable(now)
            self._last_attempt = now
            self.fetches += 1
            try:
                keys = await self._fetch()
            except KeySetFetchError as exc:
                usable = self._usable(self._clock())
                logger.warning(
                    "fetching the JWKS from %s failed (%s); %s",
                    self._url,
                    exc,
                    "keeping the last good key set" if usable else "no usable key set",
                )
                return usable
            self._current = _KeySet(fetched_at=self._clock(), keys=keys)
            return self._current

    async def _fetch(self) -> dict[str, dict[str, Any]]:
        try:
            async with self._http.stream("GET", self._url) as response:
                if response.status_code != httpx.codes.OK:
                    raise KeySetFetchError(f"HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise KeySetFetchError(f"the document exceeds {MAX_DOCUMENT_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise KeySetFetchError(type(exc).__name__) from exc
        try:
            return _signing_keys(json.loads(body))
        except ValueError as exc:
            raise KeySetFetchError("the document is not JSON") from exc
