"""Why a calendar could not be fetched, in words fit to show its owner and store.

A calendar's address may carry its access token and an HTTP library's error often
quotes the URL, so no library message is passed on: each failure is described here,
by the host at most (which ``address_hint`` shows anyway), never by path or query.
"""

from __future__ import annotations

MAX_MESSAGE = 300


class CalendarFetchFailed(Exception):
    """The calendar could not be fetched or read; the last good busy set stays."""

    def __init__(self, message: str) -> None:
        super().__init__(message[:MAX_MESSAGE])
        self.message = message[:MAX_MESSAGE]
