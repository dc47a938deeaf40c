"""A consultant's linked calendars (busy time in): the consultant links their own,
operators anyone's; only they read them.

Linking checks the address as far as it can without fetching (its form, and the
outbound policy: public addresses only), seals address and password, and wakes the
consultant's sync workflow, which fetches the calendar within moments. If Temporal
cannot be reached then, the calendar is linked all the same and the worker's keeper
starts the sync within one interval.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Response, status
from temporalio.client import Client
from temporalio.service import RPCError

from api.audit_trail import actor_of
from api.auth import Principal
from api.deps import ContainerDep, CurrentPrincipal, SessionDep
from api.errors import NotFound, ServiceUnavailable, Unprocessable
from api.openapi import problems
from api.routes.consultants import ensure_may_manage, get_profile
from api.schemas.calendars import CalendarLink, CalendarOut, SyncAccepted
from core.settings import Settings
from core.vocabulary import AuditAction, AuditTarget, CalendarKind
from db import audit
from db.calendars import linked
from db.models import ConsultantCalendar
from integrations.calendars.addresses import AddressRefused, address_hint, normalised_address
from integrations.calendars.secrets import CalendarKeyMissing, CalendarSecrets
from integrations.outbound.targets import TargetRefused, calendar_target_policy
from workflows.calendar_sync_start import wake_calendar_sync

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/consultants", tags=["calendars"])

MANAGERS_ONLY = (403, "Not this consultant, nor an operator")
NO_CALENDAR = (404, "No such consultant, or no such calendar of theirs")


def _checked_address(link: CalendarLink, settings: Settings) -> str:
    try:
        address = normalised_address(link.url)
        calendar_target_policy(settings).check_url(address)
    except AddressRefused as refused:
        raise Unprocessable(f"The calendar address is refused: {refused}.", field="url") from None
    except TargetRefused as refused:
        raise Unprocessable(
            f"The calendar address is refused: {refused}. Calendars are fetched from public "
            "addresses only (BOOKING_CALENDAR_ALLOWED_TARGETS names exceptions).",
            field="url",
        ) from None
    if link.kind is CalendarKind.CALDAV and (link.username is None or link.password is None):
        raise Unprocessable(
            "A CalDAV calendar needs a username and a password (an app password).",
            field="password",
        )
    if link.password is not None and link.username is None:
        raise Unprocessable("A password needs its username.", field="username")
    return address


def _secrets(settings: Settings) -> CalendarSecrets:
    try:
        return CalendarSecrets.from_settings(settings)
    except CalendarKeyMissing:
        raise ServiceUnavailable(
            "Calendars cannot be linked: no BOOKING_CALENDAR_SECRET_KEY is configured."
        ) from None


async def _calendar(
    session: SessionDep, consultant_user_id: uuid.UUID, calendar_id: uuid.UUID
) -> ConsultantCalendar:
    calendar = await linked.calendar_of(session, consultant_user_id, calendar_id)
    if calendar is None:
        raise NotFound(f"Consultant {consultant_user_id} has no calendar {calendar_id}.")
    return calendar


async def _wake(
    temporal: Client, settings: Settings, consultant_id: uuid.UUID, calendar_id: uuid.UUID
) -> None:
    await wake_calendar_sync(
        temporal,
        consultant_id=consultant_id,
        task_queue=settings.temporal_task_queue,
        interval=settings.calendar_sync_interval,
        calendar_id=calendar_id,
    )


async def _audit(
    session: SessionDep,
    principal: Principal,
    action: AuditAction,
    calendar_id: uuid.UUID,
    changed: audit.Changes,
) -> uuid.UUID:
    return await audit.record(
        session,
        actor=actor_of(principal),
        action=action,
        target_type=AuditTarget.CONSULTANT_CALENDAR,
        target_id=calendar_id,
        changed=changed,
    )


@router.post(
    "/{consultant_user_id}/calendars",
    status_code=status.HTTP_201_CREATED,
    summary="Link an external calendar whose events make the consultant busy",
    description=(
        "An ICS address or a CalDAV calendar. Its events (recurring ones expanded over "
        'the booking horizon) become busy time; transparent ("free") and cancelled '
        "events do not. Only times are stored, never titles. The address must be public "
        "(`422` otherwise, as for a malformed one); the first sync starts at once, then "
        "every `BOOKING_CALENDAR_SYNC_INTERVAL`."
    ),
    responses=problems(
        MANAGERS_ONLY,
        (404, "The consultant has no profile"),
        (422, "The address is malformed or not allowed, or credentials are missing"),
        (503, "No calendar key is configured"),
    ),
)
async def link_calendar(
    consultant_user_id: uuid.UUID,
    body: CalendarLink,
    response: Response,
    session: SessionDep,
    container: ContainerDep,
    principal: CurrentPrincipal,
) -> CalendarOut:
    ensure_may_manage(principal, consultant_user_id)
    settings = container.settings
    address = _checked_address(body, settings)
    secrets = _secrets(settings)
    await get_profile(session, consultant_user_id)
    calendar_id = uuid.uuid4()
    password = body.password.get_secret_value() if body.password is not None else None
    calendar = await linked.link(
        session,
        linked.NewCalendar(
            calendar_id=calendar_id,
            consultant_id=consultant_user_id,
            kind=body.kind.value,
            display_name=body.display_name,
            address_ciphertext=secrets.seal(address, calendar_id=calendar_id, field="address"),
            address_hint=address_hint(address),
            username=body.username,
            password_ciphertext=(
                secrets.seal(password, calendar_id=calendar_id, field="password")
                if password is not None
                else None
            ),
        ),
    )
    await _audit(
        session,
        principal,
        AuditAction.CALENDAR_LINKED,
        calendar_id,
        audit.changes(None, audit.snapshot(calendar)),
    )
    await session.commit()
    try:
        await _wake(container.temporal, settings, consultant_user_id, calendar_id)
    except (RPCError, RuntimeError, TimeoutError) as exc:
        logger.warning(
            "calendar %s is linked but its sync could not be started yet: %s", calendar_id, exc
        )
    response.headers["Location"] = f"{router.prefix}/{consultant_user_id}/calendars/{calendar_id}"
    return CalendarOut.of(calendar)


@router.get(
    "/{consultant_user_id}/calendars",
    summary="List a consultant's linked calendars and how their sync is going",
    responses=problems(MANAGERS_ONLY, (404, "The consultant has no profile")),
)
async def list_calendars(
    consultant_user_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> list[CalendarOut]:
    ensure_may_manage(principal, consultant_user_id)
    await get_profile(session, consultant_user_id)
    return [CalendarOut.of(c) for c in await linked.calendars_of(session, consultant_user_id)]


@router.get(
    "/{consultant_user_id}/calendars/{calendar_id}",
    summary="A linked calendar and how its sync is going",
    responses=problems(MANAGERS_ONLY, NO_CALENDAR),
)
async def read_calendar(
    consultant_user_id: uuid.UUID,
    calendar_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> CalendarOut:
    ensure_may_manage(principal, consultant_user_id)
    return CalendarOut.of(await _calendar(session, consultant_user_id, calendar_id))


@router.delete(
    "/{consultant_user_id}/calendars/{calendar_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unlink a calendar: its address, password and busy time are deleted",
    responses=problems(MANAGERS_ONLY, NO_CALENDAR),
)
async def unlink_calendar(
    consultant_user_id: uuid.UUID,
    calendar_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    ensure_may_manage(principal, consultant_user_id)
    before = await audit.locked_snapshot(session, ConsultantCalendar, calendar_id)
    calendar = await _calendar(session, consultant_user_id, calendar_id)
    await linked.unlink(session, calendar)
    await _audit(
        session, principal, AuditAction.CALENDAR_UNLINKED, calendar_id, audit.changes(before, None)
    )
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{consultant_user_id}/calendars/{calendar_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Fetch a calendar now",
    description=(
        "Wakes the consultant's sync workflow for this calendar (starting it if it is "
        "not running). The sync happens in the background: read the calendar for "
        "`last_success_at`, `stale` and `last_error`."
    ),
    responses=problems(MANAGERS_ONLY, NO_CALENDAR, (503, "Temporal is not reachable; retry")),
)
async def sync_calendar(
    consultant_user_id: uuid.UUID,
    calendar_id: uuid.UUID,
    session: SessionDep,
    container: ContainerDep,
    principal: CurrentPrincipal,
) -> SyncAccepted:
    ensure_may_manage(principal, consultant_user_id)
    await _calendar(session, consultant_user_id, calendar_id)
    entry = await _audit(session, principal, AuditAction.CALENDAR_SYNC_REQUESTED, calendar_id, {})
    await session.commit()
    try:
        await _wake(container.temporal, container.settings, consultant_user_id, calendar_id)
    except (RPCError, RuntimeError, TimeoutError) as exc:
        logger.warning("could not wake the sync of calendar %s: %s", calendar_id, exc)
        await audit.withdraw(session, entry)
        await session.commit()
        raise ServiceUnavailable(
            "The workflow service is not reachable right now; retry shortly.",
            headers={"Retry-After": "1"},
        ) from exc
    return SyncAccepted(calendar_id=calendar_id)
