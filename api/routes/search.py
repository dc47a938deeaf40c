"""Search for bookable times: the starts free slots offer for a session of a service type."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import SessionDep, SettingsDep, SignedIn
from api.errors import Unprocessable
from api.openapi import problems
from api.pagination import (
    Page,
    PageQuery,
    decode_slot_cursor,
    decode_time_cursor,
    encode_slot_cursor,
    encode_time_cursor,
    keyset_page,
)
from api.schemas.consultants import TimeZoneName
from api.schemas.fields import IsoAwareDatetime, StorableText
from api.schemas.search import BookableDay, BookableDays, BookableTimeOut
from api.submission_checks import bookable_service_type, service_policy, start_interval_minutes
from core.settings import Settings
from db.availability.offer import consultant_zone
from db.availability.search import SearchCriteria, search_bookable_starts, search_bookable_times
from db.models import ServiceType

router = APIRouter(prefix="/v1/availability", tags=["availability"])

START_GRANULARITY = timedelta(minutes=5)
"""When the window is moved up to "now plus notice", its start is rounded up to this."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _check_window(start: datetime, end: datetime, settings: Settings) -> None:
    if end <= start:
        raise Unprocessable("`to` must be after `from`.")
    if end - start > settings.search_max_window:
        raise Unprocessable(
            f"The window spans at most {settings.search_max_window.days} days; narrow it."
        )


def _earliest_start(window_start: datetime, now: datetime, notice: timedelta) -> datetime:
    """The window's start, moved up to the first moment a booking may still start.

    Times sooner than the minimum notice (the service type's) cannot be confirmed in
    time, and past ones not at all, so they are never offered.
    """
    earliest = now + notice
    remainder = (earliest - _EPOCH) % START_GRANULARITY
    if remainder:
        earliest += START_GRANULARITY - remainder
    return max(window_start.astimezone(UTC), earliest)


def _specializations(service_type: ServiceType, requested: str | None) -> tuple[str, ...]:
    # The caller may narrow the search but never widen it past what the service type
    # requires: a consultant lacking it could not be assigned. Profiles store them
    # trimmed and lower-cased, so compare the same way.
    wanted = {s.strip().lower() for s in (service_type.required_specialization, requested) if s}
    return tuple(sorted(s for s in wanted if s))


def _by_day(page: Page[BookableTimeOut], time_zone: str) -> BookableDays:
    zone = consultant_zone(time_zone)

    def day_of(item: BookableTimeOut) -> date:
        return item.start_time.astimezone(zone).date()

    days = [BookableDay(date=day, items=list(items)) for day, items in groupby(page.items, day_of)]
    return BookableDays(time_zone=time_zone, days=days, next_cursor=page.next_cursor)


@router.get(
    "/search",
    summary="Find bookable times",
    description=(
        "Every start a learner can book for a session of the service type, with the "
        "whole session inside [`from`, `to`), ordered by start, then slot id: the "
        "starts lie on the service type's start grid (every `start_interval_minutes`, "
        "counted from midnight on the consultant's clock, also across daylight-saving "
        "changes) inside free slots of consultants who take bookings (and have the "
        "specializations). `from` is moved up to now plus the minimum notice. Every "
        "scheduling policy applies: the buffers of the type and the consultant are free "
        "around each start, no start lies beyond the type's booking horizon, and no "
        "consultant is offered on a day or in a week at their cap. Submit an item's "
        "`slot_id` and `start_time` as `slot_id` and `start` to book it.\n\n"
        "`group_by=day` answers the same page grouped by the day each start falls on "
        "in `time_zone` (UTC unless given; pass the consultant's zone with "
        "`consultant_id` for their days, or the learner's for a calendar of theirs). "
        "`earliest_only=true` answers one item per free slot instead, its earliest "
        "start, ordered by slot start, then slot id."
    ),
    responses=problems(
        (404, "No such service type"),
        (
            422,
            "Invalid parameters, a window too long or reversed, an inactive service type, "
            "`group_by` with `earliest_only`",
        ),
    ),
)
async def search_availability(
    page: PageQuery,
    session: SessionDep,
    settings: SettingsDep,
    _: SignedIn,
    service_type_id: Annotated[
        uuid.UUID, Query(description="The session length is this type's default duration.")
    ],
    window_start: Annotated[
        IsoAwareDatetime, Query(alias="from", description="Window start, with an offset.")
    ],
    window_end: Annotated[
        IsoAwareDatetime, Query(alias="to", description="Window end (exclusive), with an offset.")
    ],
    consultant_id: Annotated[uuid.UUID | None, Query(description="Only this consultant.")] = None,
    specialization: Annotated[
        StorableText | None,
        Query(
            min_length=1,
            max_length=100,
            description="Also require this specialization (the type's own always applies).",
        ),
    ] = None,
    group_by: Annotated[
        Literal["day"] | None,
        Query(description="`day`: the page's starts grouped by day (see `time_zone`)."),
    ] = None,
    time_zone: Annotated[
        TimeZoneName, Query(description="IANA zone whose days `group_by=day` uses.")
    ] = "UTC",
    earliest_only: Annotated[
        bool, Query(description="One item per free slot: its earliest start.")
    ] = False,
) -> Page[BookableTimeOut] | BookableDays:
    _check_window(window_start, window_end, settings)
    if earliest_only and group_by is not None:
        raise Unprocessable("`group_by` groups every start; leave out `earliest_only`.")
    service_type = await bookable_service_type(session, service_type_id)
    policy = service_policy(service_type, settings)
    now = datetime.now(UTC)
    criteria = SearchCriteria(
        window_start=_earliest_start(window_start, now, policy.minimum_notice),
        window_end=window_end.astimezone(UTC),
        duration=timedelta(minutes=service_type.default_duration_minutes),
        specializations=_specializations(service_type, specialization),
        consultant_id=consultant_id,
        limit=page.limit + 1,
        start_interval_minutes=start_interval_minutes(service_type, settings),
        service_type_id=service_type.id,
        buffer_before=policy.buffer_before,
        buffer_after=policy.buffer_after,
        starts_by=policy.starts_by(now),
        stale_calendars_block=settings.calendar_stale_blocks_booking,
    )
    if earliest_only:
        after_slot = decode_slot_cursor(page.cursor) if page.cursor else None
        earliest = await search_bookable_times(session, replace(criteria, after=after_slot))
        return keyset_page(
            earliest,
            page.limit,
            BookableTimeOut.of,
            lambda last: encode_slot_cursor(last.slot_start, last.slot_id),
        )
    after = decode_time_cursor(page.cursor) if page.cursor else None
    starts = await search_bookable_starts(session, criteria, after=after)
    found = keyset_page(
        starts,
        page.limit,
        BookableTimeOut.of,
        lambda last: encode_time_cursor(last.start_time, last.slot_id),
    )
    return found if group_by is None else _by_day(found, time_zone)
