"""All side effects of the consultation process; each activity is idempotent.

The modules here define the activities, named as their activity names are
(``consultation.*`` in ``requests``, ``session.*`` in ``sessions`` and ``meetings``).
This package module holds what they share: one transaction per activity, and
PostgreSQL's verdicts turned into clean outcomes.

Every activity changes the database in a single transaction (state change plus its
outbox event). What PostgreSQL may answer under concurrency is mapped here:

- serialization failure / deadlock: a transient ``DatabaseConflict``, retried by the
  activity's retry policy (the transaction rolled back, so nothing half happened);
- exclusion violation (two slots of a consultant overlapping): a non-retryable
  ``SlotUnavailable``, because the same statement would collide again;
- a request or session row in a status no transition expects (``db.transitions``):
  a retryable ``UnexpectedState``, so an operator can repair the row and the
  workflow carries on.

Anything else propagates unchanged and is retried, which is right for a lost
connection and harmless for a bug (the workflow waits, visibly, instead of failing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from core.vocabulary import ErrorType
from db.errors import (
    DEADLOCK_DETECTED,
    EXCLUSION_VIOLATION,
    SERIALIZATION_FAILURE,
    UnexpectedRowState,
    sqlstate,
)

DATABASE_CONFLICT = "DatabaseConflict"
UNEXPECTED_STATE = "UnexpectedState"

SessionFactory = async_sessionmaker[AsyncSession]


def business_failure(error_type: ErrorType, message: str) -> ApplicationError:
    """A refusal that retrying cannot change."""
    return ApplicationError(message, type=error_type.value, non_retryable=True)


def translate(error: DBAPIError) -> ApplicationError | None:
    code = sqlstate(error)
    if code in (SERIALIZATION_FAILURE, DEADLOCK_DETECTED):
        return ApplicationError(
            f"transaction aborted by a concurrent one (SQLSTATE {code}); retrying",
            type=DATABASE_CONFLICT,
        )
    if code == EXCLUSION_VIOLATION:
        return business_failure(
            ErrorType.SLOT_UNAVAILABLE, "the time overlaps another slot of the consultant"
        )
    return None


@asynccontextmanager
async def transaction(session_factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """Commit on success, roll back on any error, and translate what PostgreSQL said."""
    try:
        async with session_factory() as session, session.begin():
            yield session
    except DBAPIError as error:
        translated = translate(error)
        if translated is None:
            raise
        raise translated from error
    except UnexpectedRowState as error:
        raise ApplicationError(str(error), type=UNEXPECTED_STATE) from error
