"""The HTTP session the CalDAV client talks through: the outbound guard at connect
time, a bound on every answer's size, no proxies and no ``.netrc``.

``caldav`` (3.6) does its own HTTP with ``niquests`` and takes no transport of ours,
but it keeps its session in ``DAVClient.session`` and sends every request through it,
and a ``niquests.Session`` takes a DNS resolver object. So the client gets a session
whose resolver is ``GuardedResolver``: it resolves the name, checks every address
against the ``TargetPolicy`` (as the webhook transport does), and hands exactly those
checked addresses to the connect that follows, so a name cannot answer a public
address to a check and 127.0.0.1 to the connection (DNS rebinding). Address literals
go through it too. A redirect is a new connection, and checked the same way.

The size bound is a response hook: niquests calls it before the body is read, so a
body larger than the bound is refused while it is being read, not after.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import niquests
from niquests.packages.urllib3.contrib.resolver.system import SystemResolver

from integrations.outbound.targets import IPAddress, TargetPolicy, TargetRefused, literal_address

Lookup = Callable[..., list[Any]]
"""``socket.getaddrinfo``'s shape; tests give a stub that answers what they choose."""

READ_CHUNK = 64 * 1024


class ResponseTooLarge(niquests.exceptions.RequestException):
    """An answer of the calendar server was larger than the bound."""


class GuardedResolver(SystemResolver):  # type: ignore[misc]
    """The system resolver (or ``lookup``), refusing names with a forbidden address.

    A refusal is raised as ``OSError`` (what the connection code expects of a failed
    lookup, so nothing is tried further) and kept in ``refused``, because the HTTP
    stack wraps the error into a generic connection failure on its way up."""

    def __init__(self, policy: TargetPolicy, lookup: Lookup = socket.getaddrinfo) -> None:
        super().__init__()
        self._policy = policy
        self._lookup = lookup
        self.refused: str | None = None

    def recycle(self) -> GuardedResolver:
        return self

    def getaddrinfo(
        self,
        host: bytes | str | None,
        port: str | int | None,
        family: socket.AddressFamily,
        type: socket.SocketKind,
        proto: int = 0,
        flags: int = 0,
        *,
        quic_upgrade_via_dns_rr: bool = False,
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else (host or "")
        records = self._lookup(name, port, family, type, proto, flags)
        addresses: list[IPAddress] = []
        for record in records:
            address = literal_address(str(record[4][0]).split("%", 1)[0])
            if address is None:
                self._refuse(f"{name} resolved to something that is not an address")
            else:
                addresses.append(address)
        try:
            self._policy.check_addresses(name, addresses)
        except TargetRefused as refused:
            self._refuse(str(refused))
        return records

    def _refuse(self, reason: str) -> None:
        self.refused = reason
        raise OSError(reason)


def bounded_body(max_bytes: int) -> Callable[..., niquests.Response]:
    """A response hook that reads the body itself, at most ``max_bytes`` of it."""

    def read(response: niquests.Response, **_: Any) -> niquests.Response:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(f"the calendar server's answer is larger than {max_bytes} bytes")
        body = bytearray()
        for chunk in response.iter_content(READ_CHUNK):
            body.extend(chunk)
            if len(body) > max_bytes:
                response.close()
                raise ResponseTooLarge(
                    f"the calendar server's answer is larger than {max_bytes} bytes"
                )
        response._content = bytes(body)
        response._content_consumed = True
        return response

    return read


def guarded_session(
    policy: TargetPolicy, *, max_bytes: int, lookup: Lookup = socket.getaddrinfo
) -> tuple[niquests.Session, GuardedResolver]:
    """A session for one CalDAV sync, and its resolver (to ask why a connect failed)."""
    resolver = GuardedResolver(policy, lookup)
    session = niquests.Session(resolver=resolver, disable_http3=True)
    session.trust_env = False  # no proxy and no .netrc from the environment
    session.hooks["response"].append(bounded_body(max_bytes))
    return session, resolver
