"""What a linked calendar's address may be, and the hint shown in its place.

Calendar apps hand out addresses as ``webcal://`` (Apple, Outlook) or ``https://``;
``webcal`` is HTTP by convention, and read as https here (no provider serves calendars
over plain http any more, and a CalDAV password must not travel in the clear). Plain
``http`` is accepted where the outbound policy allows it (not in production).
Credentials in the address itself are refused: they belong in the username and
password fields, which are stored encrypted apart from the address.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MAX_ADDRESS_LENGTH = 2000
SCHEMES = frozenset({"http", "https"})
WEBCAL_SCHEMES = frozenset({"webcal", "webcals"})


class AddressRefused(ValueError):
    """The address is not one a calendar can be fetched from; the message says why."""


def normalised_address(address: str) -> str:
    """The address as it will be fetched (``webcal://`` becomes ``https://``)."""
    address = address.strip()
    if len(address) > MAX_ADDRESS_LENGTH:
        raise AddressRefused(f"the address is longer than {MAX_ADDRESS_LENGTH} characters")
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        raise AddressRefused("the address is not a URL") from None
    scheme = parts.scheme.lower()
    if scheme in WEBCAL_SCHEMES:
        scheme = "https"
    if scheme not in SCHEMES:
        raise AddressRefused("the address must start with https:// (or webcal://)")
    if not parts.hostname:
        raise AddressRefused("the address names no host")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused(
            "the address must not contain a username or password; give them in their fields"
        )
    del port  # read only to validate it
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def address_hint(address: str) -> str:
    """What may be shown of an address: scheme and host (and port), never the path or
    query, where secret addresses keep their token: ``https://calendar.google.com/…``."""
    parts = urlsplit(address)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}/…"
