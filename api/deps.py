"""Dependency aliases: ``SessionDep``, ``CurrentPrincipal`` and role guards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, Role
from api.container import AppContainer
from api.errors import Forbidden, PersonErased, Unauthorized
from core.pseudonyms import pseudonym_for
from core.settings import Settings
from db.erasure import is_erased

_bearer = HTTPBearer(auto_error=False, description="A JWT issued by the platform's IAM.")


# Dependencies are coroutines even where they only read: FastAPI runs a plain function
# in the thread pool, a thread hop on every request.
async def get_container(request: Request) -> AppContainer:
    container: AppContainer = request.app.state.container
    return container


ContainerDep = Annotated[AppContainer, Depends(get_container)]


async def get_settings_dep(container: ContainerDep) -> Settings:
    return container.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(container: ContainerDep) -> AsyncIterator[AsyncSession]:
    """One session per request. Handlers commit explicitly; anything uncommitted rolls back."""
    async with container.session_factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_principal(
    request: Request,
    container: ContainerDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The verified caller; every authenticated call also spends from their rate limit.

    A person whose erasure was asked for is gone: their (still valid) token answers 410.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A bearer token is required (Authorization: Bearer <JWT>).")
    principal = await container.verifier.verify(credentials.credentials)
    await container.rate_limits.spend(principal.user_id, request.method)
    secret = container.settings.pseudonym_secret.get_secret_value()
    if await is_erased(session, pseudonym_for(principal.user_id, secret)):
        raise PersonErased("This user's data was erased; the account no longer exists here.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


class RoleGuard:
    """A dependency that lets through callers holding at least one of its roles (a class,
    so the OpenAPI document can tell role-guarded operations apart: they may answer 403)."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        if not principal.roles & self.roles:
            names = " or ".join(sorted(role.value for role in self.roles))
            raise Forbidden(f"This action needs the {names} role.")
        return principal


def require_any_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through callers holding at least one of ``roles``."""
    return RoleGuard(frozenset(roles))


OperatorPrincipal = Annotated[Principal, Depends(require_any_role(Role.OPERATOR))]
# A person using the product; a machine token (``events:read``) is not one.
SignedIn = Annotated[
    Principal, Depends(require_any_role(Role.LEARNER, Role.CONSULTANT, Role.OPERATOR))
]
ConsultantOrOperator = Annotated[
    Principal, Depends(require_any_role(Role.CONSULTANT, Role.OPERATOR))
]
LearnerPrincipal = Annotated[Principal, Depends(require_any_role(Role.LEARNER))]
