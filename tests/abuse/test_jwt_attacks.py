"""Hostile tokens against a service configured as in production: a JWKS URL, served
here by a real HTTP server on the loopback interface with the IAM's RSA public key.

tests/api/test_auth.py covers the HS256 development setup (bad claims, ``alg: none``,
an RS256 token against it, malformed headers); this covers the JWKS path: algorithm
confusion, keys the token names itself, unknown and forged keys, and the claims.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio.to_thread
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from temporalio.client import Client

from api.app import create_app
from api.auth import TokenVerifier
from api.errors import ProblemError
from core.settings import Settings
from tests.conftest import TEST_JWT_SECRET
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

PROTECTED = "/v1/service-types"
KID = "iam-2026-1"
ATTACKER_KID = "attacker-1"


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "alg": "RS256", "use": "sig"}


@dataclass
class KeyServer:
    """Serves the IAM's key set (and an attacker's, to see whether it is ever fetched).

    ``failing`` makes it answer 500, ``hold`` (while unset) keeps it from answering.
    """

    iam_key: rsa.RSAPrivateKey
    attacker_key: rsa.RSAPrivateKey
    requested: list[str] = field(default_factory=list)
    port: int = 0
    served: dict[str, bytes] = field(default_factory=dict)
    failing: bool = False
    hold: threading.Event | None = None

    def documents(self) -> dict[str, bytes]:
        return {
            "/jwks.json": json.dumps({"keys": [_jwk(self.iam_key, KID)]}).encode(),
            "/attacker/jwks.json": json.dumps(
                {"keys": [_jwk(self.attacker_key, ATTACKER_KID), _jwk(self.attacker_key, KID)]}
            ).encode(),
        }

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fetches(self, path: str = "/jwks.json") -> int:
        return self.requested.count(path)


@contextmanager
def serving(keys: KeyServer) -> Iterator[KeyServer]:
    keys.served = keys.documents()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            keys.requested.append(self.path)
            if keys.hold is not None:
                keys.hold.wait(timeout=30)
            body = keys.served.get(self.path)
            self.send_response(500 if keys.failing else 200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    keys.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield keys
    finally:
        if keys.hold is not None:
            keys.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def key_server() -> Iterator[KeyServer]:
    with serving(KeyServer(iam_key=_private_key(), attacker_key=_private_key())) as keys:
        yield keys


@pytest.fixture
def own_key_server() -> Iterator[KeyServer]:
    """A key server for one test, which may break or rotate it."""
    with serving(KeyServer(iam_key=_private_key(), attacker_key=_private_key())) as keys:
        yield keys


@pytest.fixture(scope="module")
async def jwks_app(settings: Settings, key_server: KeyServer) -> AsyncIterator[FastAPI]:
    # The algorithm list is left at its default (HS256): with a JWKS URL the service
    # must still accept asymmetric algorithms only.
    production_like = settings.model_copy(
        update={"jwt_jwks_url": key_server.url("/jwks.json"), "jwt_secret": None}
    )
    application = create_app(
        production_like, temporal=await Client.connect("127.0.0.1:1", lazy=True)
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def jwks_client(jwks_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=jwks_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


# --- forging -----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def hs256_by_hand(claims: dict[str, Any], secret: bytes, **header: Any) -> str:
    """PyJWT refuses a PEM as an HMAC secret, so the attacker signs by hand."""
    signing_input = _segments({"alg": "HS256", "typ": "JWT", **header}, claims)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def claims(tokens: TokenFactory) -> dict[str, Any]:
    return tokens.claims(["operator"], uuid.uuid4())


async def _refused(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get(PROTECTED, headers=bearer(token))
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    return body


# --- tests -------------------------------------------------------------------------


async def test_a_token_signed_with_the_iam_key_is_accepted(
    jwks_client: httpx.AsyncClient, key_server: KeyServer, claims: dict[str, Any]
) -> None:
    token = jwt.encode(claims, key_server.iam_key, algorithm="RS256", headers={"kid": KID})
    response = await jwks_client.get(PROTECTED, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


@pytest.mark.parametrize("kid", [KID, None], ids=["with-kid", "without-kid"])
async def test_alg_none_is_refused(
    jwks_client: httpx.AsyncClient, claims: dict[str, Any], kid: str | None
) -> None:
    header = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
    await _refused(jwks_client, f"{_segments(header, claims)}.")


@pytest.mark.parametrize(
    "secret",
    ["public-key-spki-pem", "public-key-pkcs1-pem", "jwks-document", "shared-dev-secret"],
)
async def test_hs256_is_refused_whatever_it_is_signed_with(
    jwks_client: httpx.AsyncClient, key_server: KeyServer, claims: dict[str, Any], secret: str
) -> None:
    """HS/RS confusion: HS256 "verified" with the public key as the HMAC secret would
    let anyone who can read the key set mint tokens."""
    public = key_server.iam_key.public_key()
    secrets = {
        "public-key-spki-pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "public-key-pkcs1-pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ),
        "jwks-document": key_server.documents()["/jwks.json"],
        "shared-dev-secret": TEST_JWT_SECRET.encode(),
    }
    await _refused(jwks_client, hs256_by_hand(claims, secrets[secret], kid=KID))


@pytest.mark.parametrize("algorithm", ["RS512", "PS256"])
async def test_algorithms_are_pinned_even_with_the_right_key(
    jwks_client: httpx.AsyncClient, key_server: KeyServer, claims: dict[str, Any], algorithm: str
) -> None:
    token = jwt.encode(claims, key_server.iam_key, algorithm=algorithm, headers={"kid": KID})
    await _refused(jwks_client, token)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"iss": "https://evil.example"}, "issuer"),
        ({"aud": "another-service"}, "audience"),
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"exp": None}, "exp"),
    ],
    ids=["wrong-issuer", "wrong-audience", "expired", "no-exp"],
)
async def test_claims_are_checked_on_iam_signed_tokens(
    jwks_client: httpx.AsyncClient,
    key_server: KeyServer,
    claims: dict[str, Any],
    overrides: dict[str, Any],
    fragment: str,
) -> None:
    changed = {k: v for k, v in {**claims, **overrides}.items() if v is not None}
    token = jwt.encode(changed, key_server.iam_key, algorithm="RS256", headers={"kid": KID})
    body = await _refused(jwks_client, token)
    assert fragment in body["detail"].lower()


@pytest.mark.parametrize("kid", ["unknown-key", None], ids=["unknown-kid", "no-kid"])
async def test_a_key_id_not_in_the_key_set_is_refused(
    jwks_client: httpx.AsyncClient, key_server: KeyServer, claims: dict[str, Any], kid: str | None
) -> None:
    headers = {"kid": kid} if kid else None
    token = jwt.encode(claims, key_server.iam_key, algorithm="RS256", headers=headers)
    body = await _refused(jwks_client, token)
    assert "key" in body["detail"].lower()


async def test_another_key_under_the_iam_key_id_is_refused(
    jwks_client: httpx.AsyncClient, key_server: KeyServer, claims: dict[str, Any]
) -> None:
    token = jwt.encode(claims, key_server.attacker_key, algorithm="RS256", headers={"kid": KID})
    body = await _refused(jwks_client, token)
    assert body["detail"] == "The token is invalid."


@pytest.mark.parametrize("kid", [ATTACKER_KID, KID])
async def test_keys_named_by_the_token_itself_are_never_used(
    jwks_client: httpx.AsyncClient, key_server: KeyServer, claims: dict[str, Any], kid: str
) -> None:
    """``jku``/``x5u`` point at the attacker's key set, ``jwk`` embeds the attacker's
    key: the service trusts its configured key set only, and never fetches theirs."""
    attacker_set = key_server.url("/attacker/jwks.json")
    headers = {
        "kid": kid,
        "jku": attacker_set,
        "x5u": attacker_set,
        "jwk": _jwk(key_server.attacker_key, kid),
    }
    token = jwt.encode(claims, key_server.attacker_key, algorithm="RS256", headers=headers)
    await _refused(jwks_client, token)
    assert "/attacker/jwks.json" not in key_server.requested


async def test_an_unreachable_key_set_is_an_outage_not_a_bad_token(
    settings: Settings, key_server: KeyServer, claims: dict[str, Any]
) -> None:
    """When the IAM's JWKS cannot be fetched the token may well be valid: 503, retry."""
    unreachable_iam = settings.model_copy(
        update={"jwt_jwks_url": "http://127.0.0.1:1/jwks.json", "jwt_secret": None}
    )
    application = create_app(
        unreachable_iam, temporal=await Client.connect("127.0.0.1:1", lazy=True)
    )
    token = jwt.encode(claims, key_server.iam_key, algorithm="RS256", headers={"kid": KID})
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get(PROTECTED, headers=bearer(token))
    assert_problem(response, 503)
    assert response.headers["retry-after"] == "5"


# --- the key set: cached with a TTL, refetched sparingly, kept through an outage ------

TTL = timedelta(minutes=5)
MAX_STALE = timedelta(hours=1)
REFETCH_INTERVAL = timedelta(seconds=30)


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by.total_seconds()


@asynccontextmanager
async def verifier_for(
    settings: Settings, keys: KeyServer, clock: FakeClock, **overrides: Any
) -> AsyncIterator[TokenVerifier]:
    jwks = settings.model_copy(
        update={
            "jwt_jwks_url": keys.url("/jwks.json"),
            "jwt_secret": None,
            "jwt_jwks_cache_ttl": TTL,
            "jwt_jwks_max_stale": MAX_STALE,
            "jwt_jwks_refetch_interval": REFETCH_INTERVAL,
            **overrides,
        }
    )
    verifier = TokenVerifier(jwks, clock=clock)
    try:
        yield verifier
    finally:
        await verifier.aclose()


def _signed(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str = KID, **header: Any) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, **header})


async def _outcome(verifier: TokenVerifier, token: str) -> int:
    try:
        await verifier.verify(token)
    except ProblemError as error:
        return error.status
    return 200


async def test_a_cached_key_costs_no_fetch_and_no_thread(
    settings: Settings,
    own_key_server: KeyServer,
    claims: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_threads(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("verifying a token must not hop to a thread")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_threads)
    clock = FakeClock()
    async with verifier_for(settings, own_key_server, clock) as verifier:
        token = _signed(claims, own_key_server.iam_key)
        for _ in range(5):
            principal = await verifier.verify(token)
            clock.advance(TTL / 10)
    assert principal.is_operator
    assert own_key_server.fetches() == 1


async def test_unknown_key_ids_refetch_at_most_once_per_interval(
    settings: Settings, own_key_server: KeyServer, claims: dict[str, Any]
) -> None:
    """Made-up kids must not turn every request into a fetch from the IAM (this runs
    before the per-user rate limit: nobody is known until the token is verified)."""
    clock = FakeClock()
    async with verifier_for(settings, own_key_server, clock) as verifier:
        assert await _outcome(verifier, _signed(claims, own_key_server.iam_key)) == 200
        assert await _outcome(verifier, _signed(claims, own_key_server.iam_key, kid="y")) == 401
        assert own_key_server.fetches() == 1  # the set was fetched a moment ago
        clock.advance(REFETCH_INTERVAL)
        outcomes = [
            await _outcome(verifier, _signed(claims, own_key_server.iam_key, kid=f"made-up-{i}"))
            for i in range(20)
        ]
        assert own_key_server.fetches() == 2  # one refetch, for the first new kid
        clock.advance(REFETCH_INTERVAL)
        assert await _outcome(verifier, _signed(claims, own_key_server.iam_key, kid="x")) == 401
    assert outcomes == [401] * 20
    assert own_key_server.fetches() == 3


async def test_concurrent_unknown_key_ids_share_one_fetch(
    settings: Settings, own_key_server: KeyServer, claims: dict[str, Any]
) -> None:
    async with verifier_for(settings, own_key_server, FakeClock()) as verifier:
        tokens = [_signed(claims, own_key_server.iam_key, kid=f"new-{i}") for i in range(10)]
        outcomes = await asyncio.gather(*(_outcome(verifier, token) for token in tokens))
    assert outcomes == [401] * 10
    assert own_key_server.fetches() == 1


async def test_a_failed_fetch_keeps_the_last_good_set_for_a_bounded_time(
    settings: Settings, own_key_server: KeyServer, claims: dict[str, Any]
) -> None:
    clock = FakeClock()
    token = _signed(claims, own_key_server.iam_key)
    async with verifier_for(settings, own_key_server, clock) as verifier:
        assert await _outcome(verifier, token) == 200
        own_key_server.failing = True
        clock.advance(TTL)
        assert await _outcome(verifier, token) == 200  # the IAM is down: last good set
        assert own_key_server.fetches() == 2
        clock.advance(MAX_STALE)
        assert await _outcome(verifier, token) == 503  # too old to trust any more
        own_key_server.failing = False
        clock.advance(REFETCH_INTERVAL)
        assert await _outcome(verifier, token) == 200  # back, fetched again


async def test_a_key_removed_from_the_set_is_distrusted_once_the_ttl_passes(
    settings: Settings, own_key_server: KeyServer, claims: dict[str, Any]
) -> None:
    clock = FakeClock()
    revoked = _signed(claims, own_key_server.iam_key)
    successor_key = _private_key()
    successor = _signed(claims, successor_key, kid="iam-2026-2")
    async with verifier_for(settings, own_key_server, clock) as verifier:
        assert await _outcome(verifier, revoked) == 200
        own_key_server.served["/jwks.json"] = json.dumps(
            {"keys": [_jwk(successor_key, "iam-2026-2")]}
        ).encode()
        clock.advance(TTL)
        assert await _outcome(verifier, revoked) == 401
        assert await _outcome(verifier, successor) == 200


async def test_a_hanging_key_server_costs_at_most_the_fetch_timeout(
    settings: Settings, own_key_server: KeyServer, claims: dict[str, Any]
) -> None:
    own_key_server.hold = threading.Event()
    token = _signed(claims, own_key_server.iam_key)
    async with verifier_for(
        settings, own_key_server, FakeClock(), jwt_jwks_fetch_timeout=timedelta(seconds=0.3)
    ) as verifier:
        started = time.monotonic()
        outcome = await _outcome(verifier, token)
        elapsed = time.monotonic() - started
    assert outcome == 503
    assert elapsed < 5


async def test_a_key_is_used_only_with_its_own_algorithm(
    settings: Settings, own_key_server: KeyServer, claims: dict[str, Any]
) -> None:
    """The key set says RS256; an RS384 token under its kid is refused even where the
    service allows RS384."""
    async with verifier_for(
        settings, own_key_server, FakeClock(), jwt_algorithms=["RS256", "RS384"]
    ) as verifier:
        token = jwt.encode(claims, own_key_server.iam_key, algorithm="RS384", headers={"kid": KID})
        assert await _outcome(verifier, token) == 401


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"iat": None}, "iat"),
        ({"exp": int(time.time()) + 25 * 3600}, "lifetime"),
        ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, "not valid yet"),
    ],
    ids=["no-iat", "lifetime-too-long", "issued-in-the-future"],
)
async def test_token_lifetime_is_capped(
    jwks_client: httpx.AsyncClient,
    key_server: KeyServer,
    claims: dict[str, Any],
    changes: dict[str, Any],
    fragment: str,
) -> None:
    changed = {k: v for k, v in {**claims, **changes}.items() if v is not None}
    body = await _refused(jwks_client, _signed(changed, key_server.iam_key))
    assert fragment in body["detail"]
