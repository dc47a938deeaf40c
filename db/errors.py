"""Reading PostgreSQL's verdict out of SQLAlchemy's wrapped driver errors."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

EXCLUSION_VIOLATION = "23P01"
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
CHECK_VIOLATION = "23514"
SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"


def sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE of the driver error behind ``error`` (asyncpg keeps it on ``__cause__``)."""
    for candidate in (getattr(error.orig, "__cause__", None), error.orig):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def constraint_name(error: DBAPIError) -> str | None:
    for candidate in (getattr(error.orig, "__cause__", None), error.orig):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None


class UnexpectedRowState(Exception):
    """A conditional status change found the row in a status it did not expect.

    The workflow is the only writer of request and session rows, so this means a
    row was changed by hand (or is missing): worth retrying once it is repaired.
    """
