"""Fetching an ICS calendar over HTTP(S): conditional, bounded in size and time.

Every request goes through the outbound guard (``GuardedTransport``: each connection
is checked on the address it is made to, redirects included) and is checked by URL
too, so a redirect to ``http://`` where https is required is refused. The validators
the server gave last time (``ETag``, ``Last-Modified``) are sent back; ``304 Not
Modified`` means the busy set stays as it is. The body is read in chunks and the
fetch abandoned once it passes the bound, so a huge or endless answer costs at most
that much memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import httpx

from integrations.calendars.failures import CalendarFetchFailed
from integrations.outbound.targets import TargetPolicy, TargetRefused
from integrations.outbound.transport import GuardedTransport, OutboundTargetRefused, Resolver
from integrations.outbound.transport import resolve as system_resolve

MAX_REDIRECTS = 5
MAX_ETAG = 500
MAX_LAST_MODIFIED = 100
"""Longer validators are not kept (the columns' sizes): the next fetch is then a full one."""
ACCEPT = "text/calendar, text/plain;q=0.5, */*;q=0.1"
USER_AGENT = "booking-service-calendar-sync/1"


@dataclass(frozen=True)
class Validators:
    """What the server said about the version we hold."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class IcsAnswer:
    """The calendar's body, or ``None`` when it is unchanged (304); and the validators
    to send next time."""

    body: bytes | None
    validators: Validators


def ics_client(
    policy: TargetPolicy, *, timeout: timedelta, resolver: Resolver = system_resolve
) -> httpx.AsyncClient:
    """A client for fetching ICS calendars; one per worker, closed with it."""

    async def check_request(request: httpx.Request) -> None:
        try:
            policy.check_url(str(request.url))
        except TargetRefused as refused:
            raise OutboundTargetRefused(str(refused), request=request) from None

    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver=resolver),
        timeout=timeout.total_seconds(),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
        headers={"Accept": ACCEPT, "User-Agent": USER_AGENT},
        event_hooks={"request": [check_request]},
    )


async def fetch_ics(
    client: httpx.AsyncClient,
    address: str,
    validators: Validators,
    *,
    max_bytes: int,
    time_limit: timedelta,
    username: str | None = None,
    password: str | None = None,
) -> IcsAnswer:
    """GET the calendar, conditionally; raises ``CalendarFetchFailed``."""
    headers: dict[str, str] = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    auth = httpx.BasicAuth(username, password or "") if username else None
    try:
        async with asyncio.timeout(time_limit.total_seconds()):
            async with client.stream("GET", address, headers=headers, auth=auth) as response:
                if response.status_code == httpx.codes.NOT_MODIFIED:
                    return IcsAnswer(None, _validators(response, fallback=validators))
                if response.status_code != httpx.codes.OK:
                    raise CalendarFetchFailed(_status_message(response.status_code))
                body = await _bounded_body(response, max_bytes)
                return IcsAnswer(body, _validators(response, fallback=Validators()))
    except TimeoutError:
        raise CalendarFetchFailed(
            f"the calendar server did not answer within {time_limit.total_seconds():g} s"
        ) from None
    except OutboundTargetRefused as refused:
        raise CalendarFetchFailed(f"refused: {refused}") from None
    except httpx.TooManyRedirects:
        raise CalendarFetchFailed(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.TimeoutException:
        raise CalendarFetchFailed(
            f"the calendar server did not answer within {time_limit.total_seconds():g} s"
        ) from None
    except httpx.HTTPError as error:
        raise CalendarFetchFailed(
            f"could not reach the calendar server ({type(error).__name__})"
        ) from None


async def _bounded_body(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise CalendarFetchFailed(f"the calendar is larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise CalendarFetchFailed(f"the calendar is larger than {max_bytes} bytes")
    return bytes(body)


def _validators(response: httpx.Response, *, fallback: Validators) -> Validators:
    """The validators of this answer; a 304 may leave out what did not change."""
    etag = response.headers.get("ETag") or fallback.etag
    last_modified = response.headers.get("Last-Modified") or fallback.last_modified
    return Validators(
        etag=etag if etag and len(etag) <= MAX_ETAG else None,
        last_modified=(
            last_modified if last_modified and len(last_modified) <= MAX_LAST_MODIFIED else None
        ),
    )


def _status_message(status: int) -> str:
    if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        return f"the calendar server refused access (HTTP {status}); check the address"
    if status in (httpx.codes.NOT_FOUND, httpx.codes.GONE):
        return f"the calendar is not at its address any more (HTTP {status})"
    return f"the calendar server answered HTTP {status}"
