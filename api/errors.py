"""One error hierarchy carrying its HTTP status, rendered as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from db.errors import sqlstate

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://booking-service.dev/problems/"


class ProblemError(Exception):
    """A failure the client can act on; subclasses fix the status and the problem type."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(
            detail,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            **extensions,
        )


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class SlotConflict(Conflict):
    slug, title = "slot-overlap", "Overlapping availability"


class InvalidSignature(ProblemError):
    status, slug, title = 401, "invalid-signature", "Invalid webhook signature"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class Unprocessable(ProblemError):
    status, slug, title = 422, "unprocessable", "Unprocessable request"


class RateLimited(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "service-unavailable", "Service temporarily unavailable"


# --- refusals of a request's workflow (see ``api.consultation_workflow``) -----------


class InvalidState(Conflict):
    slug, title = "invalid-state", "Not possible in the current state"


class DeadlinePassed(Conflict):
    slug, title = "deadline-passed", "Too late"


class ChangeInProgress(Conflict):
    slug, title = "change-in-progress", "Another change is in progress"


class RequestFinished(Conflict):
    slug, title = "request-finished", "The request is finished"


class SlotUnavailable(Conflict):
    slug, title = "slot-unavailable", "The slot is not available"


class StartUnavailable(Conflict):
    """A chosen start that is on the grid but not free; ``reason`` says why."""

    slug, title = "start-unavailable", "The start is not available"


class StartOffGrid(Unprocessable):
    """A chosen start between the starts the service type offers."""

    slug, title = "start-off-grid", "Not one of the offered starts"


class NoFittingSlot(Conflict):
    slug, title = "no-fitting-slot", "No free slot fits"


class SchedulingPolicyRefused(Conflict):
    """A time a scheduling policy forbids; ``policy`` names it (``buffer``,
    ``daily_cap``, ``weekly_cap``, ``beyond_horizon``)."""

    slug, title = "scheduling-policy", "A scheduling policy forbids this time"


class ConsultantBusy(Conflict):
    """The consultant's linked calendar shows them busy at the time."""

    slug, title = "consultant-busy", "The consultant is busy elsewhere then"


class IdempotencyKeyReused(Conflict):
    slug, title = "idempotency-key-reused", "Idempotency-Key already used"


class SubmissionInProgress(Conflict):
    """A retry of a submission whose first copy is still being stored (the IETF
    Idempotency-Key draft's answer to a concurrent retry)."""

    slug, title = "submission-in-progress", "The request is still being stored"


# --- personal data -------------------------------------------------------------------


class ExportNotReady(Conflict):
    slug, title = "export-not-ready", "The export is still being prepared"


class PersonErased(ProblemError):
    status, slug, title = 410, "person-erased", "This person's data was erased"


class MeetingPlatformRejected(ProblemError):
    status, slug, title = 502, "meeting-platform-rejected", "The meeting platform refused"


class WorkflowTimeout(ProblemError):
    status, slug, title = 504, "workflow-timeout", "The request's process did not answer in time"


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    410: ("gone", "Gone"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("unprocessable", "Unprocessable request"),
    429: ("rate-limited", "Too many requests"),
}


def _json_safe(errors: Any) -> Any:
    """Validation errors may carry exceptions or bytes in ``ctx``/``input``; keep them JSON."""
    if isinstance(errors, dict):
        return {key: _json_safe(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        return [_json_safe(value) for value in errors]
    if errors is None or isinstance(errors, str | int | float | bool):
        return errors
    return str(errors)


# SQLSTATE classes meaning "the database cannot serve you now", not "your request is bad":
# 08 connection exception, 53 insufficient resources, 57P operator intervention (shutdown),
# 57014 query canceled (the statement timeout: a lock held elsewhere, an overloaded server).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P", "57014")


def _database_unavailable(error: DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    code = sqlstate(error)
    if code is None:
        # No SQLSTATE: the driver failed before the server answered (refused, reset).
        causes = (error.orig, getattr(error.orig, "__cause__", None))
        return any(isinstance(cause, OSError | TimeoutError) for cause in causes)
    return code.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path.

    Routing answers 405 from the first route whose path matched, so its ``Allow``
    names that route's methods only, not those of the routes beside it (GET, PUT and
    PATCH of one resource are three routes).
    """
    path = request.url.path
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and route.methods and pattern.match(path):
            methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.status,
            exc.slug,
            exc.title,
            exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extensions,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {k: v for k, v in error.items() if k in {"loc", "msg", "type", "ctx"}}
            for error in exc.errors()
        ]
        return problem_response(
            422,
            "validation-error",
            "Invalid request",
            "The request did not pass validation; see `errors`.",
            instance=request.url.path,
            errors=_json_safe(errors),
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(
            exc.status_code,
            slug,
            title,
            str(exc.detail),
            instance=request.url.path,
            headers=headers or None,
        )

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and not _database_unavailable(exc):
            return await on_unexpected(request, exc)
        # Connection refused, "too many clients", pool exhausted: the client may retry.
        logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return problem_response(
            503,
            "service-unavailable",
            "Service temporarily unavailable",
            "The database is not reachable right now; retry shortly.",
            instance=request.url.path,
            headers={"Retry-After": "1"},
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal-error",
            "Internal server error",
            "An unexpected error occurred; it has been logged.",
            instance=request.url.path,
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(PoolTimeoutError, on_database_error)
    # asyncpg raises the socket's own error when it cannot even connect.
    app.add_exception_handler(ConnectionError, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)
