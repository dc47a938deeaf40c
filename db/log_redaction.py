"""Database errors without the values they were given, wherever they are logged.

``hide_parameters`` keeps SQLAlchemy from printing a failing statement's bound values,
but two other paths still carry them into logs and tracebacks:

- PostgreSQL's ``DETAIL`` quotes row values ("Failing row contains (…)", "Key
  (…)=(…) already exists"); asyncpg prints it with the error;
- asyncpg refuses a value it cannot encode with the start of its repr ("invalid
  input for query argument $2: 'whsec_…' (…)").

A learner's details text or a webhook signing secret could be such a value, so every
error from the engine has both withheld before anyone sees it. The SQL, the
constraint's name and the SQLSTATE stay: they are what a reader needs.
"""

from __future__ import annotations

import contextlib
import re

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

WITHHELD_DETAIL = "(withheld from logs: it can quote row values)"
_ARGUMENT_VALUE = re.compile(r"(invalid input for query argument \$\d+): .*", re.DOTALL)


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not other for other in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def redact(error: BaseException) -> None:
    """Withhold the values quoted by ``error`` and every exception behind it."""
    for exc in _chain(error):
        if isinstance(getattr(exc, "detail", None), str):
            with contextlib.suppress(AttributeError, TypeError):
                exc.detail = WITHHELD_DETAIL  # type: ignore[attr-defined]
        if exc.args and isinstance(exc.args[0], str):
            message = _ARGUMENT_VALUE.sub(r"\1 (its value is withheld from logs)", exc.args[0])
            if message != exc.args[0]:
                exc.args = (message, *exc.args[1:])


def _on_error(context: ExceptionContext) -> None:
    redact(context.original_exception)
    if context.sqlalchemy_exception is not None:
        redact(context.sqlalchemy_exception)


def withhold_values_from_errors(engine: AsyncEngine) -> AsyncEngine:
    event.listen(engine.sync_engine, "handle_error", _on_error)
    return engine
