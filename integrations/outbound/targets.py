"""Which outbound targets are allowed: public addresses only, unless allow-listed.

A webhook subscription makes the worker send HTTP requests to a URL an operator
typed in, a linked calendar to a URL a consultant typed in. Left open, either is a
way into the service's own network (server-side request forgery): the database,
Temporal, the cloud metadata service at 169.254.169.254, anything on loopback. So a
target must be a public address: not loopback, private, link-local, shared (CGNAT),
unique-local, multicast, reserved or unspecified, also when written as an IPv4-mapped
or NAT64 IPv6 address or in the legacy numeric forms (``2130706433``, ``0x7f.1``)
resolvers still accept. Named hosts and ranges of an allow-list are the exception
(``BOOKING_WEBHOOK_ALLOWED_TARGETS``, ``BOOKING_CALENDAR_ALLOWED_TARGETS``; tests and
the dev stack allow loopback).

Two checks use this policy: ``check_url`` when a subscription or a calendar is
written (no DNS: the URL's form, address literals and names that are local by
definition), and ``check_addresses`` when a connection is made (every address the
name resolved to, the one it then connects to; see ``transport.py`` and
``integrations/calendars/caldav_session.py``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.settings import Environment, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that never denote a public host: single-label names (compose services such
# as "postgres" or "temporal", search-domain shortcuts) and the special-use domains.
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan")
LOCAL_NAMES = frozenset({"localhost"})
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


class TargetRefused(ValueError):
    """The target is not one the service may reach; the message says why, for people."""


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one, in any form a resolver would accept."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare and all(ch in "0123456789abcdefx." for ch in bare.lower()):
        try:
            # inet_aton reads "2130706433", "0x7f.1" and "127.1" as getaddrinfo does;
            # it parses locally, no lookup.
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _normal_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class TargetPolicy:
    """Public addresses, plus ``allowed_hosts`` (exact names) and ``allowed_networks``."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    require_https: bool = False
    purpose: str = "webhook"
    """What the URLs are for, in messages ("webhook URLs must use https")."""

    @classmethod
    def of(
        cls, entries: Iterable[str], *, require_https: bool, purpose: str = "webhook"
    ) -> TargetPolicy:
        """From an allow-list setting: CIDR ranges or addresses, else names."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (entry.strip() for entry in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(_normal_host(entry))
        return cls(frozenset(hosts), tuple(networks), require_https, purpose)

    def host_allowed(self, host: str) -> bool:
        return _normal_host(host) in self.allowed_hosts

    def address_allowed(self, address: IPAddress) -> bool:
        if is_public(address):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allowed_networks)

    def check_url(self, url: str) -> None:
        """What can be told from the URL alone, without looking anything up."""
        parts = urlsplit(url)
        if self.require_https and parts.scheme != "https":
            raise TargetRefused(f"{self.purpose} URLs must use https in production")
        host = parts.hostname or ""
        if self.host_allowed(host):
            return
        address = literal_address(host)
        if address is not None:
            if not self.address_allowed(address):
                raise TargetRefused(f"{host} is not a public address")
            return
        name = _normal_host(host)
        if name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES) or "." not in name:
            raise TargetRefused(f"{host} is not a public host name")

    def check_addresses(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """At connect time: every address ``host`` resolved to must be allowed (one
        bad answer among good ones is how a rebinding attack would slip through)."""
        if self.host_allowed(host):
            return
        for address in addresses:
            if not self.address_allowed(address):
                raise TargetRefused(f"{host} resolves to an address that is not public")


def webhook_target_policy(settings: Settings) -> TargetPolicy:
    return TargetPolicy.of(
        settings.webhook_allowed_targets,
        require_https=settings.environment is Environment.PRODUCTION,
    )


def calendar_target_policy(settings: Settings) -> TargetPolicy:
    """Calendar addresses are typed by consultants, not operators, so they have an
    allow-list of their own: an internal receiver an operator allowed for webhooks is
    no business of a consultant's calendar."""
    return TargetPolicy.of(
        settings.calendar_allowed_targets,
        require_https=settings.environment is Environment.PRODUCTION,
        purpose="calendar",
    )
