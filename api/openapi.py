"""Errors in the OpenAPI document: one problem+json schema, documented on every operation.

Routes declare the refusals that are theirs (``responses=problems(404, 409, ...)``).
What every operation of a kind shares is added here, from the operation's own
dependencies, so a new endpoint is documented the same way without anyone
remembering to:

- a bearer token: 401 (with ``WWW-Authenticate``), 410 (the caller was erased) and
  429 (``Retry-After``);
- a role guard (``require_any_role``): 403;
- a database session: 503 when PostgreSQL is unreachable;
- parameters or a body: 422, the validation problem (not FastAPI's default body);
- a body: 400 when it is not JSON at all, 413 over ``BOOKING_API_MAX_BODY_BYTES``;
- a ``/v1`` path: 503 when the process serves too many requests already;
- an opaque cursor (``cursor`` or ``after``): 400 for one this API did not issue.

Every error response then carries the ``Problem`` schema as
``application/problem+json``, and every success status a route lists without a body
(say 200 beside a 201) carries the body of the operation's main success response.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from api.deps import RoleGuard, get_principal, get_session
from api.errors import PROBLEM_BASE, PROBLEM_JSON

PROBLEM_SCHEMA_NAME = "Problem"
PROBLEM_REF = f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"
CURSOR_PARAMETERS = frozenset({"cursor", "after"})

_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 1},
}


class ValidationIssue(BaseModel):
    """One reason a request did not pass validation."""

    loc: list[str | int] = Field(
        description="Where: `body`, `query`, `path` or `header`, then keys."
    )
    msg: str
    type: str = Field(description="A stable code, e.g. `missing`, `uuid_parsing`.")
    ctx: dict[str, Any] | SkipJsonSchema[None] = None


class Problem(BaseModel):
    """An RFC 9457 problem. Members beyond these are extensions of the problem `type`
    (e.g. `conflicts` of a `slot-overlap`, `request_id` of an `idempotency-key-reused`)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": f"{PROBLEM_BASE}not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "Service type 8d0f1f0e-3c1a-4c2e-9a55-2b7c9f1e0a11 does not exist.",
                    "instance": "/v1/service-types/8d0f1f0e-3c1a-4c2e-9a55-2b7c9f1e0a11",
                }
            ]
        },
    )

    type: str = Field(
        json_schema_extra={"format": "uri"},
        description=f"Stable URI of the kind of problem, `{PROBLEM_BASE}<slug>`.",
    )
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(ge=400, le=599, description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, for people.")
    instance: str | SkipJsonSchema[None] = Field(
        default=None, description="The path of the request that failed."
    )
    errors: list[ValidationIssue] | SkipJsonSchema[None] = Field(
        default=None, description="Validation problems (`validation-error`) only."
    )


def problem(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    """One documented problem response, for a route's ``responses=``."""
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if headers:
        response["headers"] = headers
    return response


_DEFAULT_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Payload too large",
    422: "The request did not pass validation",
    429: "Too many requests",
    503: "Temporarily unavailable; retry shortly",
}


def problems(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: ``problems(404, (409, "The name is taken"))``, a
    status alone with a standard description or with the route's own."""
    documented: dict[int | str, dict[str, Any]] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, None)
        documented[status] = problem(description or _DEFAULT_DESCRIPTIONS.get(status, "Error"))
    return documented


# --- the shared part ------------------------------------------------------------------


def _tree(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _tree(sub)


def _shared_problems(route: APIRoute) -> dict[int, dict[str, Any]]:
    dependants = list(_tree(route.dependant))
    calls = [d.call for d in dependants if d.call is not None]
    query = [p.alias for d in dependants for p in d.query_params]
    has_input = any(
        d.path_params or d.query_params or d.header_params or d.body_params for d in dependants
    )
    shared: dict[int, dict[str, Any]] = {}
    bad_request = [
        *(["The body is not JSON"] if any(d.body_params for d in dependants) else []),
        *(["The cursor is not one this API issued"] if CURSOR_PARAMETERS & set(query) else []),
    ]
    if bad_request:
        shared[400] = problem("; or ".join(bad_request))
    if get_principal in calls:
        shared[401] = problem(
            "No bearer token, or one that is malformed, expired, not signed by the IAM, "
            "or for another issuer or audience",
            **{
                "WWW-Authenticate": {
                    "description": "The bearer challenge.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        )
        shared[410] = problem("The caller's data was erased: the account is gone")
        shared[429] = problem(
            "Too many requests of this kind from this user", **{"Retry-After": _RETRY_AFTER}
        )
    if any(isinstance(call, RoleGuard) for call in calls):
        shared[403] = problem("The caller's roles do not allow this")
    if has_input:
        shared[422] = problem("The request did not pass validation; `errors` lists why")
    if any(d.body_params for d in dependants):
        shared[413] = problem("The body is larger than this API accepts")
    unavailable = [
        *(["The database is not reachable right now"] if get_session in calls else []),
        *(["This API process serves too many requests"] if route.path.startswith("/v1/") else []),
    ]
    if unavailable:
        shared[503] = problem(
            "; or ".join(unavailable) + "; retry shortly", **{"Retry-After": _RETRY_AFTER}
        )
    return shared


def _is_fastapi_validation_default(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _document(operation: dict[str, Any], route: APIRoute) -> None:
    responses: dict[str, dict[str, Any]] = operation["responses"]
    if "422" in responses and _is_fastapi_validation_default(responses["422"]):
        del responses["422"]
    for status, shared in _shared_problems(route).items():
        declared = responses.get(str(status))
        if declared is None:
            responses[str(status)] = shared
        elif "content" not in declared:
            # The route's own words, the shared body.
            responses[str(status)] = {**shared, **declared, "content": shared["content"]}
    success_content = next(
        (
            r["content"]
            for s, r in sorted(responses.items())
            if s.startswith("2") and "content" in r
        ),
        None,
    )
    for code, response in responses.items():
        if "content" in response or code == "204":
            continue
        if code[0] in "45":
            response["content"] = problem("")["content"]
        elif code.startswith("2") and success_content is not None:
            response["content"] = success_content
    operation["responses"] = dict(sorted(responses.items()))


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _drop_unreferenced_validation_schemas(document: dict[str, Any]) -> None:
    """FastAPI's own 422 bodies, once no response uses them any more."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    prefix = "#/components/schemas/"
    if prefix + "HTTPValidationError" not in set(_references(document["paths"])):
        schemas.pop("HTTPValidationError", None)
        if prefix + "ValidationError" not in set(_references([document["paths"], schemas])):
            schemas.pop("ValidationError", None)


def _add_problem_schemas(document: dict[str, Any]) -> None:
    generated = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(generated.pop("$defs", {}))
    schemas[PROBLEM_SCHEMA_NAME] = generated


def document_problems(document: dict[str, Any], app: FastAPI) -> None:
    """Complete the error responses of an OpenAPI ``document`` generated for ``app``."""
    _add_problem_schemas(document)
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        for method in sorted(route.methods or ()):
            path = context.path_format or route.path_format
            operation = document["paths"].get(path, {}).get(method.lower())
            if operation is not None:
                _document(operation, route)
    _drop_unreferenced_validation_schemas(document)


def install_openapi(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with its error responses completed."""
    generate = app.openapi
    completed = False

    def openapi() -> dict[str, Any]:
        nonlocal completed
        document = generate()  # FastAPI caches the document in ``app.openapi_schema``
        if not completed:
            document_problems(document, app)
            completed = True
        return document

    app.openapi = openapi  # type: ignore[method-assign]
