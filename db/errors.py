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
    """The SQLSTATE of the driver error behind ``error``."""
    return _driver_attribute(error, "sqlstate")


def constraint_name(error: DBAPIError) -> str | None:
    """The constraint the driver error behind ``error`` names, if any."""
    return _driver_attribute(error, "constraint_name")


def _driver_attribute(error: DBAPIError, name: str) -> str | None:
    # asyncpg keeps its own exception on ``__cause__`` of SQLAlchemy's adapted one.
    for candidate in (getattr(error.orig, "__cause__", None), error.orig):
        value = getattr(candidate, name, None)
        if isinstance(value, str):
            return value
    return None


class UnexpectedRowState(Exception):
    """A conditional status change found the row in a status it did not expect.

    The workflow is the only writer of request and session rows, so this means a
    row was changed by hand (or is missing): worth retrying once it is repaired.
    """
