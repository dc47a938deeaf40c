"""One session as an iCalendar file, for its parties to import (and operators to read).

Visible exactly as ``GET /v1/sessions/{id}`` is: someone else's session is a 404 like
a missing one. The event is the one the parties' feeds carry (same UID and SEQUENCE),
so importing it and subscribing later leaves one event, not two.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from api.auth import Principal, Role
from api.deps import SessionDep, SettingsDep, SignedIn
from api.errors import NotFound
from api.openapi import problems
from api.session_ics import (
    CALENDAR_RESPONSES,
    CalendarOptions,
    Viewer,
    calendar_response,
    summary,
)
from api.visibility import is_requester, visible_row
from db.models import ScheduledSession
from db.session_calendar import entry_of

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


def _viewer(principal: Principal, row: ScheduledSession) -> Viewer:
    """The caller's part in the session; an operator who is neither party gets no link."""
    if is_requester(principal, row):
        return Viewer.LEARNER
    if principal.has(Role.CONSULTANT) and row.consultant_user_id == principal.user_id:
        return Viewer.CONSULTANT
    return Viewer.OPERATOR


@router.get(
    "/{session_id}/calendar.ics",
    summary="Get a session as an iCalendar file",
    description=(
        "One VEVENT with the session's stable `UID`, its `SEQUENCE` (one up on every "
        "reschedule and on the cancel), `STATUS` (`CONFIRMED`, or `CANCELLED` after a "
        "cancel), UTC times and, for the learner and the consultant while it is not "
        "cancelled, the join link as `URL` and `LOCATION`."
    ),
    response_class=Response,
    responses={**CALENDAR_RESPONSES, **problems((404, "No such session, or not yours to see"))},
)
async def session_calendar(
    session_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    if_none_match: Annotated[
        str | None, Header(description="The `ETag` of the copy the client holds.")
    ] = None,
) -> Response:
    row = await visible_row(session, principal, ScheduledSession, session_id)
    viewer = _viewer(principal, row)
    entry = await entry_of(session, session_id)
    if entry is None:  # sessions are never deleted
        raise NotFound(f"Session {session_id} does not exist.")
    await session.commit()
    return calendar_response(
        [entry],
        viewer,
        name=summary(entry, viewer),
        options=CalendarOptions(uid_domain=settings.calendar_uid_domain),
        if_none_match=if_none_match,
        headers={"Content-Disposition": f'attachment; filename="session-{session_id}.ics"'},
    )
