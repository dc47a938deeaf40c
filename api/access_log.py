"""Secrets in query strings stay out of the access log.

A calendar feed's address carries its token in the query (``?token=…``: calendar apps
send no headers of their own), and the server's access log writes every request's
path with its query. A filter on that logger replaces the value of every secret
query parameter before any handler formats the record, whatever serves the app
(uvicorn directly, or as gunicorn's worker: both log to ``uvicorn.access``).
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
SECRET_QUERY_PARAMETERS = ("token",)
REDACTED = "[redacted]"

_SECRET_VALUE = re.compile(
    r"(?P<name>[?&](?:" + "|".join(map(re.escape, SECRET_QUERY_PARAMETERS)) + r")=)[^&#\s\"]*",
    re.IGNORECASE,
)


def redact_query_secrets(text: str) -> str:
    return _SECRET_VALUE.sub(lambda match: match["name"] + REDACTED, text)


class QuerySecretsFilter(logging.Filter):
    """Rewrites the record's message and arguments; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Install the filter on the access logger, once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, QuerySecretsFilter) for existing in logger.filters):
        logger.addFilter(QuerySecretsFilter())
