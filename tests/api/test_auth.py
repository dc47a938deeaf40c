"""Bearer token verification: every malformed or hostile token is a 401 problem."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

PROTECTED = "/v1/service-types"


async def test_missing_token_is_401_with_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get(PROTECTED)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_valid_token_is_accepted(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    response = await client.get(PROTECTED, headers=tokens.headers("learner"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "detail_fragment"),
    [
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"aud": "another-service"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"exp": None}, "exp"),
        ({"iss": None}, "iss"),
        ({"aud": None}, "aud"),
        ({"iat": None}, "iat"),
        ({"exp": int(time.time()) + 30 * 24 * 3600}, "lifetime"),
    ],
    ids=[
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "no-exp",
        "no-iss",
        "no-aud",
        "no-iat",
        "lifetime-too-long",
    ],
)
async def test_bad_claims_are_401(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    overrides: dict[str, Any],
    detail_fragment: str,
) -> None:
    response = await client.get(PROTECTED, headers=tokens.headers("learner", **overrides))
    body = assert_problem(response, 401)
    assert detail_fragment.lower() in body["detail"].lower()


@pytest.mark.parametrize(("sub", "fragment"), [(None, "sub"), ("not-a-uuid", "UUID")])
async def test_subject_must_be_a_user_id(
    client: httpx.AsyncClient, tokens: TokenFactory, sub: str | None, fragment: str
) -> None:
    claims = {k: v for k, v in tokens.claims(["learner"], "x").items() if k != "sub"}
    if sub is not None:
        claims["sub"] = sub
    response = await client.get(
        PROTECTED, headers={"Authorization": f"Bearer {tokens.encode(claims)}"}
    )
    assert fragment.lower() in assert_problem(response, 401)["detail"].lower()


async def test_wrong_secret_is_401(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    forged = jwt.encode(tokens.claims(["operator"], uuid.uuid4()), "x" * 40, algorithm="HS256")
    response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {forged}"})
    assert_problem(response, 401)


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_alg_none_is_401(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    token = _unsigned(tokens.claims(["operator"], uuid.uuid4()))
    response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401)


async def test_rs256_token_is_refused_by_an_hs256_service(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(tokens.claims(["operator"], uuid.uuid4()), key, algorithm="RS256")
    response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401)


@pytest.mark.parametrize("header", ["Bearer", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "garbage"])
async def test_malformed_authorization_header_is_401(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get(PROTECTED, headers={"Authorization": header})
    assert_problem(response, 401)


async def test_unknown_roles_grant_nothing(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    response = await client.post(
        PROTECTED,
        json={"name": "Sneaky", "default_duration_minutes": 30},
        headers=tokens.headers("superuser", "admin"),
    )
    assert_problem(response, 403)
