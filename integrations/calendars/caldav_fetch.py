"""Fetching a CalDAV calendar with the ``caldav`` client: only what changed, if the
server can say.

Blocking (``caldav``'s client is synchronous): call it in a thread. In order of
cost, for a calendar synced before:

1. its ``getctag`` (one PROPFIND; Radicale, Nextcloud, iCloud and most others keep
   one): unchanged, and nothing else is asked;
2. with a sync token from last time, a ``sync-collection`` REPORT (RFC 6578) names the
   objects added, changed and removed since; only those are fetched, and only their
   busy time is replaced;
3. otherwise (first sync, a server without sync support, an expired token, which the
   library answers with a full listing) every object, replacing the whole set.

Objects are fetched with ``calendar-multiget``, a batch per REPORT, not one GET
each. Each object is known by its href (its path), the ``source_key`` of its busy time.
Every request goes through ``guarded_session`` (the outbound policy at connect time,
the size bound, no proxies) and carries ``BOOKING_CALENDAR_FETCH_TIMEOUT``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import unquote

import niquests
from caldav.collection import Calendar, SynchronizableCalendarObjectCollection
from caldav.davclient import DAVClient
from caldav.elements.base import ValuedBaseElement
from caldav.lib import error as caldav_error

from integrations.calendars.caldav_session import Lookup, ResponseTooLarge, guarded_session
from integrations.calendars.expansion import source_key_of
from integrations.calendars.failures import CalendarFetchFailed
from integrations.outbound.targets import TargetPolicy

MULTIGET_BATCH = 200
FAKE_TOKEN_PREFIX = "fake-"  # noqa: S105  (a marker, not a secret)
"""How ``caldav`` marks the token it made up for a server without sync support."""


class GetCTag(ValuedBaseElement):
    """The calendar's change tag (a CalendarServer extension most servers keep)."""

    tag: ClassVar[str] = "{http://calendarserver.org/ns/}getctag"


@dataclass(frozen=True)
class CaldavState:
    """What the server told us last time."""

    sync_token: str | None = None
    ctag: str | None = None
    synced_before: bool = False


@dataclass(frozen=True)
class CaldavChanges:
    """What a sync found. ``full``: ``objects`` is the whole calendar (replace every
    source); otherwise the changed objects, and the hrefs in ``deleted`` are gone.
    ``unchanged``: the calendar is as it was (nothing to store)."""

    sync_token: str | None
    ctag: str | None
    full: bool = False
    unchanged: bool = False
    objects: dict[str, str] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()


def source_key(href: Any) -> str:
    """The object's path, as the key of its busy time (hashed if it is very long)."""
    return source_key_of(unquote(str(getattr(href, "path", href))))


def fetch_caldav(
    address: str,
    *,
    username: str | None,
    password: str | None,
    state: CaldavState,
    policy: TargetPolicy,
    max_bytes: int,
    timeout: timedelta,
    lookup: Lookup = socket.getaddrinfo,
) -> CaldavChanges:
    """One sync of the calendar at ``address``; raises ``CalendarFetchFailed``."""
    session, resolver = guarded_session(policy, max_bytes=max_bytes, lookup=lookup)
    client = DAVClient(
        url=address,
        username=username,
        password=password,
        timeout=max(1, int(timeout.total_seconds())),
        enable_rfc6764=False,  # the address is the calendar's; no DNS-based discovery
    )
    client.session.close()
    client.session = session
    try:
        calendar = client.calendar(url=address)  # type: ignore[no-untyped-call]
        return _sync(calendar, state)
    except CalendarFetchFailed:
        raise
    except ResponseTooLarge:
        raise CalendarFetchFailed(
            f"an answer of the calendar server is larger than {max_bytes} bytes"
        ) from None
    except niquests.exceptions.Timeout:
        raise CalendarFetchFailed(
            f"the calendar server did not answer within {timeout.total_seconds():g} s"
        ) from None
    except niquests.exceptions.ConnectionError:
        if resolver.refused is not None:
            raise CalendarFetchFailed(f"refused: {resolver.refused}") from None
        raise CalendarFetchFailed("could not reach the calendar server") from None
    except caldav_error.AuthorizationError:
        raise CalendarFetchFailed("the calendar server refused the username or password") from None
    except caldav_error.NotFoundError:
        raise CalendarFetchFailed("there is no calendar at this address") from None
    except caldav_error.DAVError as failure:
        raise CalendarFetchFailed(
            f"the calendar server answered an error ({type(failure).__name__})"
        ) from None
    except niquests.exceptions.RequestException as failure:
        raise CalendarFetchFailed(
            f"the CalDAV exchange failed ({type(failure).__name__})"
        ) from None
    finally:
        client.close()


def _sync(calendar: Calendar, state: CaldavState) -> CaldavChanges:
    ctag = _ctag(calendar)
    if state.synced_before and ctag is not None and ctag == state.ctag:
        return CaldavChanges(sync_token=state.sync_token, ctag=ctag, unchanged=True)
    incremental = bool(state.sync_token) and not _made_up(state.sync_token)
    previous = state.sync_token if incremental or _made_up(state.sync_token) else None
    collection = calendar.get_objects_by_sync_token(sync_token=previous, load_objects=False)
    assert isinstance(collection, SynchronizableCalendarObjectCollection)  # a sync client
    token = collection.sync_token
    token = str(token) if token else None
    if _made_up(token):
        # No sync support: the library listed everything (or, with its own token
        # unchanged, nothing at all, which means the calendar did not change).
        if state.synced_before and token == state.sync_token and not collection.objects:
            return CaldavChanges(sync_token=token, ctag=ctag, unchanged=True)
        incremental = False
    deleted = {source_key(url) for url in collection.deleted_urls}
    present = [obj for obj in collection.objects if source_key(obj.url) not in deleted]
    objects = _with_data(calendar, present)
    # Listed as changed but gone by the time it was fetched: removed meanwhile.
    deleted |= {source_key(obj.url) for obj in present} - objects.keys()
    if incremental and not objects and not deleted:
        return CaldavChanges(sync_token=token, ctag=ctag, unchanged=True)
    return CaldavChanges(
        sync_token=token,
        ctag=ctag,
        full=not incremental,
        objects=objects,
        deleted=frozenset(deleted) if incremental else frozenset(),
    )


def _made_up(token: str | None) -> bool:
    return bool(token) and str(token).startswith(FAKE_TOKEN_PREFIX)


def _ctag(calendar: Calendar) -> str | None:
    try:
        value = calendar.get_property(GetCTag())
    except caldav_error.DAVError:
        return None  # no ctag here: the sync token (or a full listing) decides
    return str(value) if value else None


def _with_data(calendar: Calendar, objects: Iterable[Any]) -> dict[str, str]:
    """The iCalendar data of each object, by source key; fetched in batches where the
    listing did not carry it."""
    found: dict[str, str] = {}
    missing = []
    for obj in objects:
        if obj.is_loaded():
            found[source_key(obj.url)] = obj.get_data()
        else:
            missing.append(obj.url)
    for first in range(0, len(missing), MULTIGET_BATCH):
        batch: Any = calendar.multiget(missing[first : first + MULTIGET_BATCH])
        assert isinstance(batch, list)  # a sync client
        for loaded in batch:
            data = loaded.get_data()
            if data:
                found[source_key(loaded.url)] = data
    return found
