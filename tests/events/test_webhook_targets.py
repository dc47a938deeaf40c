"""Webhooks reach public addresses only: refused when a subscription is written and when
the dispatcher connects, checked on the very address it connects to.

No test here connects anywhere but loopback. Names resolve through an injected
resolver, and where a forbidden or public address would be connected to, the network
backend underneath records the attempt and refuses it instead of connecting.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from core.settings import Environment, Settings
from core.vocabulary import DeliveryStatus
from db.models import WebhookSubscription
from integrations.webhooks.dispatcher import WebhookDispatcher
from integrations.webhooks.signing import generate_secret
from integrations.webhooks.targets import IPAddress, TargetPolicy, TargetRefused
from integrations.webhooks.transport import GuardedTransport, WebhookTargetRefused
from tests.events.helpers import append_events, create_subscription, deliveries, eventually, running
from tests.events.receiver import Receiver
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

# A public address (example.com's) that stands for "the internet": never connected to.
PUBLIC = "93.184.215.14"
NOT_PUBLIC = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f.1",
    "0177.0.0.1",
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "[::1]",
    "[::]",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[fe80::1]",
    "[ff02::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:7f00:1::]",
]
LOCAL_NAMES = [
    "localhost",
    "localhost.",
    "api.localhost",
    "postgres",
    "temporal",
    "metadata.google.internal",
    "printer.local",
]


class ResolvesTo:
    """A resolver answering from a table; anything else is an error (no real DNS)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"{host} is not in the test's table")
        return [ipaddress.ip_address(address) for address in self.table[host]]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records where a connection would go; connects only to loopback."""

    def __init__(self) -> None:
        self.connects: list[str] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise httpcore.ConnectError("the test never connects beyond loopback")
        return await self._real.connect_tcp(host, port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


def _client(policy: TargetPolicy, resolver: ResolvesTo, backend: RecordingBackend) -> Any:
    transport = GuardedTransport(policy, resolver=resolver, backend=backend)
    return httpx.AsyncClient(transport=transport, trust_env=False)


# --- the policy ------------------------------------------------------------------------


@pytest.mark.parametrize("host", NOT_PUBLIC)
def test_addresses_that_are_not_public_are_refused(host: str) -> None:
    with pytest.raises(TargetRefused, match="not a public address"):
        TargetPolicy().check_url(f"https://{host}/hook")


@pytest.mark.parametrize("host", LOCAL_NAMES)
def test_names_that_are_local_by_definition_are_refused(host: str) -> None:
    with pytest.raises(TargetRefused, match="not a public host name"):
        TargetPolicy().check_url(f"https://{host}:8443/hook")


@pytest.mark.parametrize("host", [PUBLIC, "[2606:4700:4700::1111]", "hooks.example.com"])
def test_public_targets_pass(host: str) -> None:
    TargetPolicy().check_url(f"https://{host}/hook")


def test_allowed_hosts_and_ranges_are_the_exceptions() -> None:
    policy = TargetPolicy.of(["127.0.0.0/8", "billing.internal", " "], require_https=False)
    policy.check_url("http://127.0.0.1:9000/hook")
    policy.check_url("https://billing.internal/hook")
    policy.check_addresses("billing.internal", [ipaddress.ip_address("10.1.2.3")])
    policy.check_addresses("hooks.example.com", [ipaddress.ip_address("127.0.0.2")])
    with pytest.raises(TargetRefused):
        policy.check_url("http://10.0.0.1/hook")
    with pytest.raises(TargetRefused):
        policy.check_addresses("hooks.example.com", [ipaddress.ip_address("10.0.0.1")])


def test_production_requires_https() -> None:
    policy = TargetPolicy.of([], require_https=True)
    policy.check_url("https://hooks.example.com/hook")
    with pytest.raises(TargetRefused, match="https"):
        policy.check_url("http://hooks.example.com/hook")


# --- at connect time ---------------------------------------------------------------


@pytest.mark.parametrize(
    "answers",
    [["169.254.169.254"], ["10.0.0.7"], ["::1"], [PUBLIC, "127.0.0.1"]],
    ids=["metadata", "private", "loopback-v6", "one-bad-answer-among-good"],
)
async def test_a_name_resolving_to_a_forbidden_address_is_never_connected_to(
    answers: list[str],
) -> None:
    resolver = ResolvesTo({"rebind.example.test": answers})
    backend = RecordingBackend()
    async with _client(TargetPolicy(), resolver, backend) as http:
        with pytest.raises(WebhookTargetRefused) as refused:
            await http.post("http://rebind.example.test/hook", content=b"{}")
    assert resolver.asked == ["rebind.example.test"]
    assert backend.connects == []
    assert "not public" in str(refused.value)
    assert all(answer not in str(refused.value) for answer in answers)


async def test_the_connection_goes_to_the_checked_address_not_a_second_lookup() -> None:
    """DNS rebinding: the name is resolved once; the socket is opened to that answer."""
    resolver = ResolvesTo({"hooks.example.test": [PUBLIC]})
    backend = RecordingBackend()
    async with _client(TargetPolicy(), resolver, backend) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post("http://hooks.example.test/hook", content=b"{}")
    assert resolver.asked == ["hooks.example.test"]
    assert backend.connects == [PUBLIC]


async def test_the_request_keeps_its_host_name(receiver: Receiver) -> None:
    """Connected to the checked address, the request still names the original host
    (for https, httpcore starts TLS with that name: SNI and certificate check)."""
    port = httpx.URL(receiver.base_url).port
    resolver = ResolvesTo({"receiver.example.test": ["127.0.0.1"]})
    backend = RecordingBackend()
    policy = TargetPolicy.of(["127.0.0.0/8"], require_https=False)
    async with _client(policy, resolver, backend) as http:
        response = await http.post(f"http://receiver.example.test:{port}/hook", content=b"{}")
    assert response.status_code == 200
    assert backend.connects == ["127.0.0.1"]
    [received] = receiver.requests
    assert received.headers["host"] == f"receiver.example.test:{port}"


async def test_environment_proxies_are_not_used(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:1")
    policy = TargetPolicy.of(["127.0.0.0/8"], require_https=False)
    async with _client(policy, ResolvesTo({}), RecordingBackend()) as http:
        response = await http.post(receiver.url(), content=b"{}")
    assert response.status_code == 200


# --- the API and the dispatcher ---------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://2852039166/latest/meta-data/",  # 169.254.169.254
        "http://localhost:8000/hook",
        "http://postgres:5432/",
        "http://[::ffff:10.0.0.1]/hook",
    ],
)
async def test_the_api_refuses_targets_that_are_not_public(
    client: httpx.AsyncClient, tokens: TokenFactory, url: str
) -> None:
    operator = tokens.headers("operator")
    response = await client.post("/v1/webhook-subscriptions", json={"url": url}, headers=operator)
    assert "not a public" in assert_problem(response, 422)["detail"]
    subscription = await create_subscription(client, tokens, "https://hooks.example.com/in")
    response = await client.patch(
        f"/v1/webhook-subscriptions/{subscription['id']}", json={"url": url}, headers=operator
    )
    assert_problem(response, 422)


@pytest.mark.usefixtures("clean_database")
async def test_production_refuses_plain_http(
    settings: Settings, unreachable_temporal: Client, tokens: TokenFactory
) -> None:
    production = settings.model_copy(update={"environment": Environment.PRODUCTION})
    application = create_app(production, temporal=unreachable_temporal)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            operator = tokens.headers("operator")
            plain = await http.post(
                "/v1/webhook-subscriptions",
                json={"url": "http://hooks.example.com/in"},
                headers=operator,
            )
            secure = await http.post(
                "/v1/webhook-subscriptions",
                json={"url": "https://hooks.example.com/in"},
                headers=operator,
            )
    assert "https" in assert_problem(plain, 422)["detail"]
    assert secure.status_code == 201, secure.text


async def test_a_stored_target_that_is_not_allowed_is_refused_at_send_time(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    receiver: Receiver,
) -> None:
    """A subscription stored before the policy (or under a wider one) is not sent to;
    the operator sees why, not a library's socket error."""
    async with session_factory() as session, session.begin():
        session.add(
            WebhookSubscription(
                url=receiver.url(), event_types=[], is_enabled=True, secret=generate_secret()
            )
        )
    await append_events(session_factory, ("consultation.requested", None))
    strict = settings.model_copy(update={"webhook_allowed_targets": [], "webhook_max_attempts": 1})
    async with WebhookDispatcher(session_factory, strict) as dispatcher, running(dispatcher):
        await eventually(_parked(session_factory), 120)
    [delivery] = await deliveries(session_factory)
    assert receiver.requests == []
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("Refused: 127.0.0.1 is not a public address")


async def test_a_refusal_at_connect_time_is_what_the_operator_sees(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    host = f"rebind-{uuid.uuid4().hex[:8]}.example.test"
    async with session_factory() as session, session.begin():
        session.add(
            WebhookSubscription(
                url=f"https://{host}/hook",
                event_types=[],
                is_enabled=True,
                secret=generate_secret(),
            )
        )
    await append_events(session_factory, ("consultation.requested", None))
    backend = RecordingBackend()
    resolver = ResolvesTo({host: ["169.254.169.254"]})
    strict = settings.model_copy(update={"webhook_allowed_targets": [], "webhook_max_attempts": 1})
    http = _client(TargetPolicy(), resolver, backend)
    async with (
        http,
        WebhookDispatcher(session_factory, strict, http=http) as dispatcher,
        running(dispatcher),
    ):
        await eventually(_parked(session_factory), 120)
    [delivery] = await deliveries(session_factory)
    assert resolver.asked == [host]
    assert backend.connects == []
    assert delivery.last_error == (
        f"Refused: {host} resolves to an address that is not public "
        "(BOOKING_WEBHOOK_ALLOWED_TARGETS allows others)."
    )


def _parked(session_factory: async_sessionmaker[AsyncSession]) -> Any:
    async def check() -> bool:
        rows = await deliveries(session_factory)
        return len(rows) == 1 and rows[0].status == DeliveryStatus.PARKED.value

    return check
