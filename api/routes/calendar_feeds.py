"""Private calendar feeds: a consultant's or a learner's sessions, subscribed to by
their calendar app at an address that carries a secret token.

The person themself (in the role the feed is for) or an operator makes a feed, lists
them and revokes one; the token is in the answer that made the feed and nowhere
else. The feed itself is read without a bearer token (calendar apps cannot send
one): the token in the query authenticates, and a wrong, revoked or unknown one is
the same 404. The API's access log shows ``token=[redacted]`` (``api.access_log``),
and the audit trail records who made or revoked which feed, never a token.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import Response as PlainResponse

from api.audit_trail import actor_of
from api.auth import Principal, Role
from api.deps import ContainerDep, SessionDep, SettingsDep, SignedIn
from api.errors import Conflict, Forbidden, NotFound, PersonErased
from api.openapi import problems
from api.pagination import Page, PageQuery, decode_time_cursor, encode_time_cursor, keyset_page
from api.routes.consultants import get_profile
from api.schemas.calendar_feeds import CalendarFeedCreated, CalendarFeedOut
from api.session_ics import CALENDAR_RESPONSES, CalendarOptions, Viewer, calendar_response
from core.pseudonyms import pseudonym_for
from core.settings import Settings
from core.vocabulary import AuditAction, AuditActorKind, AuditTarget, ParticipantRole
from db import audit, calendar_feeds
from db.audit import Actor
from db.erasure import is_erased
from db.json_values import json_value
from db.session_calendar import entries_of

router = APIRouter(tags=["calendar feeds"])

CONSULTANT_FEEDS = "/v1/consultants/{user_id}/calendar-feeds"
LEARNER_FEEDS = "/v1/learners/{user_id}/calendar-feeds"
FEED_DOCUMENT = "/v1/calendar-feeds/{feed_id}/calendar.ics"
_CURSOR_TIME = "created_at"

FEED_NAMES = {
    ParticipantRole.LEARNER: "Consultations",
    ParticipantRole.CONSULTANT: "Consultations (consultant)",
}
VIEWERS = {ParticipantRole.LEARNER: Viewer.LEARNER, ParticipantRole.CONSULTANT: Viewer.CONSULTANT}
NOT_THEIRS = (403, "Neither this person (in this role) nor an operator")
NO_SUCH_FEED = "No such calendar feed, or the token does not open it."


class FeedLimitReached(Conflict):
    slug, title = "calendar-feed-limit", "Too many calendar feeds"


def _ensure_may_manage(principal: Principal, role: ParticipantRole, user_id: uuid.UUID) -> None:
    if principal.is_operator:
        return
    if principal.has(Role(role.value)) and principal.user_id == user_id:
        return
    raise Forbidden(f"Only this {role.value} or an operator may manage their calendar feeds.")


def _actor(principal: Principal, role: ParticipantRole) -> Actor:
    if principal.is_operator:
        return actor_of(principal)
    return Actor(kind=AuditActorKind(role.value), user_id=principal.user_id)


async def _refuse_erased(session: SessionDep, settings: Settings, user_id: uuid.UUID) -> None:
    if await is_erased(
        session, pseudonym_for(user_id, settings.pseudonym_secret.get_secret_value())
    ):
        raise PersonErased("This person's data was erased; they get no calendar feed.")


async def _owner(
    session: SessionDep, principal: Principal, role: ParticipantRole, user_id: uuid.UUID
) -> None:
    """The caller may manage the person's feeds, and the person can have some."""
    _ensure_may_manage(principal, role, user_id)
    if role is ParticipantRole.CONSULTANT:
        await get_profile(session, user_id)


def feed_url(settings: Settings, feed_id: uuid.UUID, token: str) -> str:
    path = FEED_DOCUMENT.format(feed_id=feed_id)
    return f"{settings.api_base_url}{path}?token={token}"


async def _create(
    session: SessionDep,
    settings: Settings,
    principal: Principal,
    response: Response,
    role: ParticipantRole,
    user_id: uuid.UUID,
) -> CalendarFeedCreated:
    await _owner(session, principal, role, user_id)
    await _refuse_erased(session, settings, user_id)
    await calendar_feeds.lock_owner(session, role, user_id)
    limit = settings.calendar_feeds_per_person
    if await calendar_feeds.open_feed_count(session, role, user_id) >= limit:
        raise FeedLimitReached(
            f"This {role.value} has {limit} calendar feeds already "
            "(BOOKING_CALENDAR_FEEDS_PER_PERSON); revoke one first.",
            limit=limit,
        )
    token = calendar_feeds.new_token()
    feed = await calendar_feeds.create_feed(session, role, user_id, token)
    await audit.record(
        session,
        actor=_actor(principal, role),
        action=AuditAction.CALENDAR_FEED_CREATED,
        target_type=AuditTarget.CALENDAR_FEED,
        target_id=feed.id,
        changed=audit.changes(None, audit.snapshot(feed)),
    )
    await session.commit()
    url = feed_url(settings, feed.id, token)
    response.headers["Cache-Control"] = "no-store"  # the token is in this answer
    return CalendarFeedCreated.model_validate(
        {
            "id": feed.id,
            "owner_role": feed.owner_role,
            "owner_user_id": feed.owner_user_id,
            "created_at": feed.created_at,
            "revoked_at": feed.revoked_at,
            "token": token,
            "url": url,
            "webcal_url": "webcal://" + url.split("://", 1)[1],
        }
    )


async def _list(
    session: SessionDep,
    principal: Principal,
    page: PageQuery,
    role: ParticipantRole,
    user_id: uuid.UUID,
) -> Page[CalendarFeedOut]:
    await _owner(session, principal, role, user_id)
    after = None
    if page.cursor is not None:
        after = decode_time_cursor(page.cursor, time_key=_CURSOR_TIME)
    rows = list(
        await calendar_feeds.feeds_page(session, role, user_id, after=after, limit=page.limit + 1)
    )
    return keyset_page(
        rows,
        page.limit,
        CalendarFeedOut.model_validate,
        lambda last: encode_time_cursor(last.created_at, last.id, time_key=_CURSOR_TIME),
    )


async def _revoke(
    session: SessionDep,
    principal: Principal,
    role: ParticipantRole,
    user_id: uuid.UUID,
    feed_id: uuid.UUID,
) -> PlainResponse:
    await _owner(session, principal, role, user_id)
    feed = await calendar_feeds.feed_of(session, role, user_id, feed_id)
    if feed is None:
        raise NotFound(f"Calendar feed {feed_id} does not exist.")
    before = audit.snapshot(feed)
    revoked_at = await calendar_feeds.revoke(session, feed_id)
    if revoked_at is not None:  # revoking a revoked feed changes nothing, says nothing
        await audit.record(
            session,
            actor=_actor(principal, role),
            action=AuditAction.CALENDAR_FEED_REVOKED,
            target_type=AuditTarget.CALENDAR_FEED,
            target_id=feed_id,
            changed=audit.changes(before, {**before, "revoked_at": json_value(revoked_at)}),
        )
    await session.commit()
    return PlainResponse(status_code=status.HTTP_204_NO_CONTENT)


_CREATE_DESCRIPTION = (
    "Makes a private feed of the {role}'s sessions and answers its subscription "
    "address with the token, this once (only a hash is kept). The {role} themself or "
    "an operator; at most `BOOKING_CALENDAR_FEEDS_PER_PERSON` feeds that are not "
    "revoked (409 `calendar-feed-limit`)."
)
_CREATED = "The feed, with its token and address (shown only now)"
_LIST_DESCRIPTION = "Oldest first, revoked ones too; never a token."
_REVOKE_DESCRIPTION = (
    "The feed answers 404 from now on; calendar apps subscribed to it keep what they "
    "fetched last. Revoking a revoked feed is a no-op."
)


@router.post(
    CONSULTANT_FEEDS,
    status_code=status.HTTP_201_CREATED,
    summary="Make a private calendar feed of a consultant's sessions",
    description=_CREATE_DESCRIPTION.format(role="consultant"),
    responses=problems(NOT_THEIRS, (404, "The consultant has no profile"), 409, 410),
    response_description=_CREATED,
)
async def create_consultant_feed(
    user_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    response: Response,
) -> CalendarFeedCreated:
    return await _create(
        session, settings, principal, response, ParticipantRole.CONSULTANT, user_id
    )


@router.get(
    CONSULTANT_FEEDS,
    summary="List a consultant's calendar feeds",
    description=_LIST_DESCRIPTION,
    responses=problems(NOT_THEIRS, (404, "The consultant has no profile")),
)
async def list_consultant_feeds(
    user_id: uuid.UUID, page: PageQuery, session: SessionDep, principal: SignedIn
) -> Page[CalendarFeedOut]:
    return await _list(session, principal, page, ParticipantRole.CONSULTANT, user_id)


@router.delete(
    CONSULTANT_FEEDS + "/{feed_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a consultant's calendar feed",
    description=_REVOKE_DESCRIPTION,
    responses=problems(NOT_THEIRS, (404, "No such feed of this consultant")),
)
async def revoke_consultant_feed(
    user_id: uuid.UUID, feed_id: uuid.UUID, session: SessionDep, principal: SignedIn
) -> PlainResponse:
    return await _revoke(session, principal, ParticipantRole.CONSULTANT, user_id, feed_id)


@router.post(
    LEARNER_FEEDS,
    status_code=status.HTTP_201_CREATED,
    summary="Make a private calendar feed of a learner's sessions",
    description=_CREATE_DESCRIPTION.format(role="learner"),
    responses=problems(NOT_THEIRS, 409, 410),
    response_description=_CREATED,
)
async def create_learner_feed(
    user_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedIn,
    response: Response,
) -> CalendarFeedCreated:
    return await _create(session, settings, principal, response, ParticipantRole.LEARNER, user_id)


@router.get(
    LEARNER_FEEDS,
    summary="List a learner's calendar feeds",
    description=_LIST_DESCRIPTION,
    responses=problems(NOT_THEIRS),
)
async def list_learner_feeds(
    user_id: uuid.UUID, page: PageQuery, session: SessionDep, principal: SignedIn
) -> Page[CalendarFeedOut]:
    return await _list(session, principal, page, ParticipantRole.LEARNER, user_id)


@router.delete(
    LEARNER_FEEDS + "/{feed_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a learner's calendar feed",
    description=_REVOKE_DESCRIPTION,
    responses=problems(NOT_THEIRS, (404, "No such feed of this learner")),
)
async def revoke_learner_feed(
    user_id: uuid.UUID, feed_id: uuid.UUID, session: SessionDep, principal: SignedIn
) -> PlainResponse:
    return await _revoke(session, principal, ParticipantRole.LEARNER, user_id, feed_id)


@router.get(
    FEED_DOCUMENT,
    summary="A private calendar feed (what calendar apps subscribe to)",
    description=(
        "No bearer token: the feed's `token` authenticates. The person's sessions "
        "starting from `BOOKING_CALENDAR_FEED_PAST` ago up to "
        "`BOOKING_CALENDAR_FEED_HORIZON` ahead, earliest first, at most "
        "`BOOKING_CALENDAR_FEED_MAX_SESSIONS`; cancelled ones as `STATUS:CANCELLED`. "
        "Send the `ETag` back as `If-None-Match`: 304 while nothing changed. Reads are "
        "rate limited per feed like any user's."
    ),
    response_class=PlainResponse,
    responses={
        **CALENDAR_RESPONSES,
        **problems(
            (404, "No such feed, a token that does not open it, or a revoked feed"),
            (429, "Too many reads of this feed"),
        ),
    },
)
async def read_feed(
    feed_id: uuid.UUID,
    token: Annotated[str, Query(description="The feed's token, from its subscription address.")],
    session: SessionDep,
    container: ContainerDep,
    if_none_match: Annotated[
        str | None, Header(description="The `ETag` of the copy the app holds.")
    ] = None,
) -> PlainResponse:
    # Per feed, before anything is read: guessing tokens costs the guesser too.
    await container.rate_limits.spend(feed_id, "GET")
    settings = container.settings
    feed = await calendar_feeds.live_feed(session, feed_id)
    if not calendar_feeds.token_opens(feed, token) or feed is None:
        raise NotFound(NO_SUCH_FEED)
    secret = settings.pseudonym_secret.get_secret_value()
    if await is_erased(session, pseudonym_for(feed.owner_user_id, secret)):
        raise NotFound(NO_SUCH_FEED)  # being erased: its feeds are about to go
    role = ParticipantRole(feed.owner_role)
    now = datetime.now(UTC)
    entries = await entries_of(
        session,
        role,
        feed.owner_user_id,
        starts_from=now - settings.calendar_feed_past,
        starts_before=now + settings.calendar_feed_horizon,
        limit=settings.calendar_feed_max_sessions,
    )
    await session.commit()  # nothing written; the connection goes back before rendering
    return calendar_response(
        entries,
        VIEWERS[role],
        name=FEED_NAMES[role],
        options=CalendarOptions(
            uid_domain=settings.calendar_uid_domain,
            refresh_interval=settings.calendar_feed_refresh_interval,
        ),
        if_none_match=if_none_match,
    )
