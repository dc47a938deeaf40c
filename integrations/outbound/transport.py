"""An httpx transport that connects only to addresses the ``TargetPolicy`` allows.

The check happens where the connection is made, on the very address connected to:
the host name is resolved once, every address it resolved to is checked, and the
socket is opened to one of those checked addresses. Checking the name earlier and
letting the HTTP client resolve it again would be open to DNS rebinding (a name that
answers a public address to the check and 127.0.0.1 to the connect). The URL, and so
the ``Host`` header and, for https, the TLS server name and certificate check, stay
those of the original host name: httpcore starts TLS on the opened stream with the
URL's host.

Proxies from the environment are never used (a proxy would make the connection on
our behalf, unchecked).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from integrations.outbound.targets import IPAddress, TargetPolicy, TargetRefused, literal_address

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# httpx's own defaults.
MAX_CONNECTIONS = 100
MAX_KEEPALIVE_CONNECTIONS = 20
KEEPALIVE_EXPIRY_S = 5.0


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` from the system resolver, without blocking the loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in infos:
        address = literal_address(str(info[4][0]).split("%", 1)[0])
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


class OutboundTargetRefused(httpx.ConnectError):
    """The connection was not made: the target is not allowed. Its message is meant
    for operators and names no resolved address."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self,
        policy: TargetPolicy,
        *,
        resolver: Resolver = resolve,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                async with asyncio.timeout(timeout):
                    addresses = await self._resolver(host, port)
            except (OSError, TimeoutError) as exc:
                raise httpcore.ConnectError(f"could not resolve {host}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        try:
            self._policy.check_addresses(host, addresses)
        except TargetRefused as exc:
            raise OutboundTargetRefused(str(exc)) from None
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("nothing is sent over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool connects through a
    ``GuardedBackend``."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        resolver: Resolver = resolve,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend, so the pool it built is replaced by the same
        # pool over the guarded backend (tests/events/test_webhook_targets.py checks
        # that requests really go through it).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
            network_backend=GuardedBackend(policy, resolver=resolver, backend=backend),
        )
