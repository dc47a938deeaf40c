"""Request and response bodies for consultation requests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from api.schemas.consultants import TimeZoneName
from api.schemas.fields import IsoAwareDatetime
from api.schemas.local_times import LocalTimes, RequestClock, RowWith
from core.vocabulary import (
    SYSTEM_ONLY_CANCELLATION_REASONS,
    CancellationReason,
    DeclineReason,
    MeetingStatus,
    RequestStatus,
    SessionStatus,
)
from workflows.contracts.messages import RequestDetails

MAX_DETAILS_LENGTH = 4000


def _storable_text(value: str) -> str:
    """PostgreSQL text holds neither NUL nor lone surrogates: refuse them here (422)
    instead of letting the database fail on them (500)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


StorableText = Annotated[str, AfterValidator(_storable_text)]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:00-05:00
        raise ValueError("the time is out of range") from exc


class ConsultationRequestCreate(BaseModel):
    """A chosen ``start`` (a bookable time from the availability search, with its
    ``slot_id`` or its ``consultant_id``), a ``slot_id`` alone (its earliest start),
    or a preferred window; with none of them, any time from now plus the minimum
    notice through the default request window."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "service_type_id": "8d0f1f0e-3c1a-4c2e-9a55-2b7c9f1e0a11",
                    "slot_id": "6f0c1c0e-8a43-4a59-9c61-0d8f3c1f2b7a",
                    "start": "2026-12-07T10:00:00Z",
                    "details": "I would like feedback on my project plan.",
                    "learner_time_zone": "Asia/Tokyo",
                },
                {
                    "service_type_id": "8d0f1f0e-3c1a-4c2e-9a55-2b7c9f1e0a11",
                    "preferred_start": "2026-12-07T08:00:00Z",
                    "preferred_end": "2026-12-11T18:00:00Z",
                },
            ]
        },
    )

    service_type_id: uuid.UUID = Field(description="An active service type.")
    slot_id: uuid.UUID | None = Field(
        default=None,
        description="Book in this free slot (a `slot_id` from /v1/availability/search): "
        "at `start` if given, else at the earliest start it offers. Its consultant is "
        "asked, and only that slot serves the request: after a decline it waits for an "
        "operator or is rejected. Excludes the preferred window.",
    )
    start: IsoAwareDatetime | None = Field(
        default=None,
        description="Book exactly this start (a `start_time` from the search), with its "
        "`slot_id` or its `consultant_id`. Not one of the offered starts: 422 "
        "`start-off-grid`; not free (taken, outside the slot, too soon): 409 "
        "`start-unavailable` with a `reason`.",
    )
    consultant_id: uuid.UUID | None = Field(
        default=None,
        description="With `start` instead of `slot_id`: the consultant whose start it is; "
        "only they serve the request (stored as its preferred consultant).",
    )
    preferred_start: IsoAwareDatetime | None = Field(
        default=None, description="Earliest start of the session (with an offset)."
    )
    preferred_end: IsoAwareDatetime | None = Field(
        default=None, description="Latest end of the session (with an offset)."
    )
    preferred_consultant_id: uuid.UUID | None = Field(
        default=None, description="Asked first when eligible; others otherwise."
    )
    details: StorableText | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_DETAILS_LENGTH,
        description="What the consultation is about; seen by the assigned consultant.",
    )
    company_id: uuid.UUID | None = Field(default=None, description="The learner's company.")
    learner_time_zone: TimeZoneName | None = Field(
        default=None,
        description="The learner's IANA time zone: responses and events show the "
        "session on this clock (`learner_local`). Default: the service's "
        "`BOOKING_DEFAULT_LEARNER_TIME_ZONE` (UTC unless configured). Not a known "
        "zone: 422.",
        examples=["Asia/Tokyo"],
    )

    @field_validator("preferred_start", "preferred_end", "start")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)

    @model_validator(mode="after")
    def _one_way_to_choose_a_time(self) -> ConsultationRequestCreate:
        has_window = self.preferred_start is not None or self.preferred_end is not None
        if (self.preferred_start is None) != (self.preferred_end is None):
            raise ValueError("give both preferred_start and preferred_end, or neither")
        if self.slot_id is not None and has_window:
            raise ValueError("give either slot_id or a preferred window, not both")
        if self.start is not None and has_window:
            raise ValueError("give either start or a preferred window, not both")
        if self.start is not None and self.slot_id is None and self.consultant_id is None:
            raise ValueError("give start with the slot_id or the consultant_id it belongs to")
        if self.consultant_id is not None and self.start is None:
            raise ValueError(
                "consultant_id goes with start; to prefer a consultant, use preferred_consultant_id"
            )
        if self.consultant_id is not None and self.preferred_consultant_id is not None:
            raise ValueError("give either consultant_id or preferred_consultant_id, not both")
        if (
            self.preferred_start is not None
            and self.preferred_end is not None
            and self.preferred_end <= self.preferred_start
        ):
            raise ValueError("preferred_end must be after preferred_start")
        return self

    @property
    def has_window(self) -> bool:
        return self.preferred_start is not None


class DeclineBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "schedule_conflict"}]}
    )

    reason: DeclineReason = Field(description="Why the consultant cannot take it.")


def _given_by_users(reason: CancellationReason) -> CancellationReason:
    if reason in SYSTEM_ONLY_CANCELLATION_REASONS:
        raise ValueError(f"{reason.value!r} is the system's own reason")
    return reason


UserCancellationReason = Annotated[
    CancellationReason,
    AfterValidator(_given_by_users),
    WithJsonSchema(
        {
            "type": "string",
            "enum": [
                reason.value
                for reason in CancellationReason
                if reason not in SYSTEM_ONLY_CANCELLATION_REASONS
            ],
        }
    ),
]
"""A reason a learner, consultant or operator may give (not an erasure's)."""


class CancelBody(BaseModel):
    """Optional for requesters and operators; consultants cancelling a session must
    give one."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "change_of_plans"}]}
    )

    reason: UserCancellationReason | None = Field(default=None, description="A reason code.")


class AssignBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "consultant_id": "22222222-2222-4222-8222-000000000001",
                    "slot_id": "6f0c1c0e-8a43-4a59-9c61-0d8f3c1f2b7a",
                }
            ]
        },
    )

    consultant_id: uuid.UUID = Field(description="Who is asked to confirm next.")
    slot_id: uuid.UUID | None = Field(
        default=None,
        description="One of that consultant's free slots; default: their earliest fit.",
    )


class LiveDetails(BaseModel):
    """What the request's workflow is doing right now (absent when Temporal cannot be
    asked; the stored fields are still right)."""

    model_config = ConfigDict(from_attributes=True)

    status: RequestStatus
    attempt: int = Field(description="Assignment attempts so far.")
    max_attempts: int
    assigned_consultant_id: uuid.UUID | None
    held_slot_id: uuid.UUID | None = Field(description="The slot held while awaiting an answer.")
    confirmation_deadline: datetime | None
    next_assignment_retry_at: datetime | None = Field(
        description="When no consultant fits: the next search."
    )
    assignment_closes_at: datetime | None = Field(
        description="After this the request is rejected if nobody was found."
    )
    session_id: uuid.UUID | None
    session_status: SessionStatus | None
    session_start: datetime | None
    session_end: datetime | None
    meeting_ready: bool
    meeting_status: MeetingStatus | None = Field(
        default=None,
        description="`pending` while the meeting platform is retried, `ready`, or "
        "`needs_update` when the session moved and the platform still has the old time.",
    )
    meeting_deadline: datetime | None = Field(
        default=None,
        description="While the meeting is pending: without one by then the session is "
        "cancelled (`meeting_platform_failure`).",
    )

    @classmethod
    def of(cls, details: RequestDetails) -> LiveDetails:
        return cls.model_validate(details)


class ConsultationRequestOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1e2d4c-5b6a-5789-8c0d-1e2f3a4b5c6d",
                    "requester_id": "11111111-1111-4111-8111-111111111111",
                    "service_type_id": "8d0f1f0e-3c1a-4c2e-9a55-2b7c9f1e0a11",
                    "status": "pending_confirmation",
                    "status_reason": None,
                    "details": "I would like feedback on my project plan.",
                    "preferred_start": "2026-12-07T08:00:00Z",
                    "preferred_end": "2026-12-11T18:00:00Z",
                    "requested_start": None,
                    "requested_slot_id": None,
                    "learner_time_zone": "Asia/Tokyo",
                    "learner_local": None,
                    "consultant_local": None,
                    "preferred_consultant_id": None,
                    "company_id": None,
                    "assigned_consultant_id": "22222222-2222-4222-8222-000000000001",
                    "attempts": 1,
                    "confirmation_deadline": "2026-12-02T10:15:00Z",
                    "session_id": None,
                    "requested_at": "2026-12-01T10:15:00Z",
                    "updated_at": "2026-12-01T10:15:01Z",
                    "live": None,
                }
            ]
        },
    )

    id: uuid.UUID
    requester_id: uuid.UUID = Field(validation_alias="requester_user_id")
    service_type_id: uuid.UUID = Field(validation_alias="consultation_service_type_id")
    status: RequestStatus
    status_reason: str | None = Field(
        description="Why it ended as it did, e.g. `no_consultant_available`."
    )
    details: str | None = Field(validation_alias="request_details")
    preferred_start: datetime | None = Field(
        validation_alias="preferred_start_time",
        description="The window the session must fit in (from the request or its slot).",
    )
    preferred_end: datetime | None = Field(validation_alias="preferred_end_time")
    requested_start: datetime | None = Field(
        validation_alias="requested_start_time",
        description="The start the learner chose (the window is then exactly the session).",
    )
    requested_slot_id: uuid.UUID | None
    learner_time_zone: str = Field(
        description="The learner's IANA zone (as submitted, else the service's default)."
    )
    learner_local: LocalTimes | None = Field(
        description="The session's start and end on the learner's clock; before there is "
        "a session, the chosen start's (`requested_start`); null while neither exists."
    )
    consultant_local: LocalTimes | None = Field(
        description="The same times on the consultant's clock (the session's consultant, "
        "else the one assigned or chosen); null while there is no time or no consultant."
    )
    preferred_consultant_id: uuid.UUID | None = Field(
        validation_alias="preferred_consultant_user_id"
    )
    company_id: uuid.UUID | None
    assigned_consultant_id: uuid.UUID | None = Field(validation_alias="assigned_consultant_user_id")
    attempts: int
    confirmation_deadline: datetime | None
    session_id: uuid.UUID | None = Field(validation_alias="scheduled_session_id")
    requested_at: datetime
    updated_at: datetime
    live: LiveDetails | None = Field(
        default=None,
        description="What the workflow of an open request is doing, read when the "
        "request is read on its own (GET /v1/consultation-requests/{id}); null in lists "
        "and in answers to changes.",
    )

    @classmethod
    def of(
        cls, row: Any, clock: RequestClock, live: RequestDetails | None = None
    ) -> ConsultationRequestOut:
        """The request row, with its times on both parties' clocks (``clock``)."""
        learner_local = consultant_local = None
        if clock.start is not None and clock.end is not None:
            learner_local = LocalTimes.on(clock.learner_time_zone, clock.start, clock.end)
            if clock.consultant_time_zone is not None:
                consultant_local = LocalTimes.on(clock.consultant_time_zone, clock.start, clock.end)
        view = cls.model_validate(
            RowWith(
                row,
                learner_time_zone=clock.learner_time_zone,
                learner_local=learner_local,
                consultant_local=consultant_local,
            )
        )
        if live is not None:
            view.live = LiveDetails.of(live)
        return view
