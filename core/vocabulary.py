"""The status and reason vocabulary of the whole service, defined once.

The database's CHECK constraints, the API's schemas, the activities and the workflow
all speak these enums. Only the standard library is imported here, so the workflow
sandbox can load this module as it is (passed through) and no layer has to keep a
copy of its own.
"""

from __future__ import annotations

from enum import StrEnum


class SlotStatus(StrEnum):
    AVAILABLE = "available"
    HELD = "held"
    BOOKED = "booked"
    UNAVAILABLE = "unavailable"


class RequestStatus(StrEnum):
    PENDING_ASSIGNMENT = "pending_assignment"
    PENDING_CONFIRMATION = "pending_confirmation"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in FINAL_REQUEST_STATUSES


FINAL_REQUEST_STATUSES = frozenset(
    {RequestStatus.COMPLETED, RequestStatus.CANCELLED, RequestStatus.REJECTED}
)


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED_BY_USER = "cancelled_by_user"
    CANCELLED_BY_CONSULTANT = "cancelled_by_consultant"
    # Not in the seed: cancelled by an operator or by the system (meeting platform failure).
    CANCELLED = "cancelled"
    NO_SHOW_USER = "no_show_user"
    NO_SHOW_CONSULTANT = "no_show_consultant"


class MeetingStatus(StrEnum):
    """Where a booked session's meeting stands on the meeting platform."""

    # Not created yet: the platform is being retried until the meeting deadline.
    PENDING = "pending"
    READY = "ready"
    # The session moved and the platform still has the meeting at the old time.
    NEEDS_UPDATE = "needs_update"


class DeliveryStatus(StrEnum):
    """The life of one outgoing webhook delivery (one event to one subscription)."""

    # Waiting for ``next_attempt_at`` (first try or a retry after backoff).
    PENDING = "pending"
    # Claimed by a dispatcher until ``locked_until``; a crashed one's claim lapses.
    DELIVERING = "delivering"
    SUCCEEDED = "succeeded"
    # Gave up after the maximum attempts; an operator may redeliver.
    PARKED = "parked"

    @property
    def is_unfinished(self) -> bool:
        return self in (DeliveryStatus.PENDING, DeliveryStatus.DELIVERING)


class InboundEventState(StrEnum):
    """An inbound partner event: recorded before it is passed on, marked once it was."""

    # Recorded; passing it on has not succeeded yet (a redelivery passes it on again).
    RECEIVED = "received"
    DELIVERED = "delivered"


class Party(StrEnum):
    """Who acts on a request. ``SYSTEM`` is the workflow itself (compensation)."""

    REQUESTER = "requester"
    CONSULTANT = "consultant"
    OPERATOR = "operator"
    SYSTEM = "system"


class ParticipantRole(StrEnum):
    LEARNER = "learner"
    CONSULTANT = "consultant"


class DeclineReason(StrEnum):
    UNAVAILABLE = "unavailable"
    OUTSIDE_EXPERTISE = "outside_expertise"
    SCHEDULE_CONFLICT = "schedule_conflict"
    OTHER = "other"


class CancellationReason(StrEnum):
    """Why a request or session was cancelled; a code, never free text."""

    CHANGE_OF_PLANS = "change_of_plans"
    SCHEDULE_CONFLICT = "schedule_conflict"
    ILLNESS = "illness"
    EMERGENCY = "emergency"
    NO_LONGER_NEEDED = "no_longer_needed"
    CONSULTANT_UNAVAILABLE = "consultant_unavailable"
    DUPLICATE_REQUEST = "duplicate_request"
    POLICY_VIOLATION = "policy_violation"
    MEETING_PLATFORM_FAILURE = "meeting_platform_failure"
    OTHER = "other"
    # The system's, when a person's data is erased; nobody else may give it.
    ACCOUNT_ERASED = "account_erased"


SYSTEM_ONLY_CANCELLATION_REASONS = frozenset({CancellationReason.ACCOUNT_ERASED})


class StatusReason(StrEnum):
    """``consultation_requests.status_reason``: why a request ended where it did."""

    NO_CONSULTANT_AVAILABLE = "no_consultant_available"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    CANCELLED_BY_REQUESTER = "cancelled_by_requester"
    CANCELLED_BY_CONSULTANT = "cancelled_by_consultant"
    CANCELLED_BY_OPERATOR = "cancelled_by_operator"
    MEETING_PLATFORM_FAILURE = "meeting_platform_failure"
    NO_SHOW_USER = "no_show_user"
    NO_SHOW_CONSULTANT = "no_show_consultant"
    ACCOUNT_ERASED = "account_erased"


class ErrorType(StrEnum):
    """``ApplicationError.type`` values callers (the API) map to responses."""

    INVALID_STATE = "InvalidState"
    NOT_ALLOWED = "NotAllowed"
    DEADLINE_PASSED = "DeadlinePassed"
    BUSY = "ChangeInProgress"
    SLOT_UNAVAILABLE = "SlotUnavailable"
    NO_FITTING_SLOT = "NoFittingSlot"
    HOLD_LOST = "HoldLost"
    INVALID_REQUEST = "InvalidRequest"
    DUPLICATE_IDEMPOTENCY_KEY = "DuplicateIdempotencyKey"
    MEETING_PLATFORM_REJECTED = "MeetingPlatformRejected"
    REQUEST_FINISHED = "RequestFinished"
    OPEN_REQUEST_LIMIT = "OpenRequestLimit"
    # A scheduling policy forbids the time (details: the ``StartRefusal`` value).
    SCHEDULING_POLICY = "SchedulingPolicy"
    # The consultant's linked calendar shows them busy at the time.
    CONSULTANT_BUSY = "ConsultantBusy"


class StartRefusal(StrEnum):
    """Why a session start is not offered (``db.availability.offer``)."""

    OFF_GRID = "off_grid"
    TOO_SOON = "too_soon"
    BEYOND_HORIZON = "beyond_horizon"
    OUTSIDE_WINDOW = "outside_window"
    OUTSIDE_SLOT = "outside_slot"
    BUFFER = "buffer"
    DAILY_CAP = "daily_cap"
    WEEKLY_CAP = "weekly_cap"
    # The consultant is busy elsewhere then (an event in a linked calendar).
    CALENDAR_BUSY = "calendar_busy"

    @property
    def is_policy(self) -> bool:
        """A scheduling policy of the service type or the consultant, not the time
        itself (taken, off the grid, outside the window)."""
        return self in _POLICY_REFUSALS

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self]


_POLICY_REFUSALS = frozenset(
    {
        StartRefusal.BEYOND_HORIZON,
        StartRefusal.BUFFER,
        StartRefusal.DAILY_CAP,
        StartRefusal.WEEKLY_CAP,
    }
)
_EXPLANATIONS = {
    StartRefusal.OFF_GRID: "it is not on the service type's start grid",
    StartRefusal.TOO_SOON: "it is sooner than the minimum notice",
    StartRefusal.BEYOND_HORIZON: "it is beyond the service type's booking horizon",
    StartRefusal.OUTSIDE_WINDOW: "the session would end after the request's window",
    StartRefusal.OUTSIDE_SLOT: "the session does not fit in a free slot",
    StartRefusal.BUFFER: "the buffer kept free around the session is not free",
    StartRefusal.DAILY_CAP: "the consultant has reached their cap of sessions that day",
    StartRefusal.WEEKLY_CAP: "the consultant has reached their cap of sessions that week",
    StartRefusal.CALENDAR_BUSY: "the consultant's calendar shows them busy then",
}


def no_show_status(absent: ParticipantRole) -> SessionStatus:
    """The session status that names who missed the session."""
    if absent is ParticipantRole.CONSULTANT:
        return SessionStatus.NO_SHOW_CONSULTANT
    return SessionStatus.NO_SHOW_USER


def no_show_reason(absent: ParticipantRole) -> StatusReason:
    """The request's status reason after a no-show (the request counts as completed)."""
    if absent is ParticipantRole.CONSULTANT:
        return StatusReason.NO_SHOW_CONSULTANT
    return StatusReason.NO_SHOW_USER


# --- the audit trail ------------------------------------------------------------------


class AuditActorKind(StrEnum):
    """In which capacity the actor of an audited change acted."""

    OPERATOR = "operator"
    CONSULTANT = "consultant"
    # A learner on their own records (their calendar feeds).
    LEARNER = "learner"
    # The platform's identity provider (an inbound IAM event), no person.
    IAM = "iam"


class AuditTarget(StrEnum):
    """What kind of record an audited change is about."""

    SERVICE_TYPE = "service_type"
    CONSULTANT_PROFILE = "consultant_profile"
    # Publishing availability adds slots to a consultant's calendar: the target is
    # the consultant; changing or deleting one slot targets that slot.
    CONSULTANT_AVAILABILITY = "consultant_availability"
    AVAILABILITY_SLOT = "availability_slot"
    WEBHOOK_SUBSCRIPTION = "webhook_subscription"
    WEBHOOK_DELIVERY = "webhook_delivery"
    CONSULTANT_CALENDAR = "consultant_calendar"
    # A person, by their user id (pseudonymised once they are erased).
    PERSON = "person"
    # A private iCalendar feed of a person's sessions (never its token).
    CALENDAR_FEED = "calendar_feed"
    # Linked external calendars do not exist yet; their routes (under
    # /v1/consultants/{id}/calendars) get a target and actions of their own here, and
    # tests/api/test_audit_trail.py fails until they write audit rows.


class AuditAction(StrEnum):
    """``<target>.<what happened>``; the row's ``changes`` hold the fields before/after."""

    SERVICE_TYPE_CREATED = "service_type.created"
    SERVICE_TYPE_UPDATED = "service_type.updated"
    CONSULTANT_PROFILE_CREATED = "consultant_profile.created"
    CONSULTANT_PROFILE_REPLACED = "consultant_profile.replaced"
    CONSULTANT_PROFILE_UPDATED = "consultant_profile.updated"
    # Caps on one service type: the target is the consultant's profile.
    CONSULTANT_SERVICE_LIMIT_SET = "consultant_profile.service_limit_set"
    CONSULTANT_SERVICE_LIMIT_REMOVED = "consultant_profile.service_limit_removed"
    AVAILABILITY_PUBLISHED = "availability.published"
    AVAILABILITY_SLOT_CHANGED = "availability.slot_changed"
    AVAILABILITY_SLOT_DELETED = "availability.slot_deleted"
    WEBHOOK_SUBSCRIPTION_CREATED = "webhook_subscription.created"
    WEBHOOK_SUBSCRIPTION_UPDATED = "webhook_subscription.updated"
    WEBHOOK_SUBSCRIPTION_DELETED = "webhook_subscription.deleted"
    WEBHOOK_SUBSCRIPTION_SECRET_ROTATED = "webhook_subscription.secret_rotated"  # noqa: S105
    WEBHOOK_DELIVERY_REDELIVERED = "webhook_delivery.redelivered"
    # A consultant's linked calendars: the target is the calendar (never its address).
    CALENDAR_LINKED = "calendar.linked"
    CALENDAR_UNLINKED = "calendar.unlinked"
    CALENDAR_SYNC_REQUESTED = "calendar.sync_requested"
    # A person's data: who asked for an export (not what it held), who for an erasure
    # (its target is the person's pseudonym, never their id).
    PERSONAL_DATA_EXPORT_REQUESTED = "personal_data.export_requested"
    PERSONAL_DATA_ERASURE_REQUESTED = "personal_data.erasure_requested"
    CALENDAR_FEED_CREATED = "calendar_feed.created"
    CALENDAR_FEED_REVOKED = "calendar_feed.revoked"


# --- retention ------------------------------------------------------------------------


class RetentionKind(StrEnum):
    """What the retention sweep removes once it is older than its setting."""

    WEBHOOK_DELIVERIES = "webhook_deliveries"
    DELIVERED_EVENTS = "delivered_events"
    INBOUND_EVENTS = "inbound_events"
    REQUEST_DETAILS = "request_details"
    MEETING_LINKS = "meeting_links"
    # Finished personal data exports, after ``BOOKING_RETENTION_EXPORTS``.
    EXPORTS = "exports"


# --- personal data: export and erasure --------------------------------------------------


class PersonalDataSection(StrEnum):
    """The parts of a person's data export, in the order the document lists them."""

    PROFILE = "profile"
    CONSULTATION_REQUESTS = "consultation_requests"
    REQUEST_DRAFTS = "request_drafts"
    SESSIONS = "sessions"
    AVAILABILITY = "availability"
    # Linked calendars (their kind, name and sync state; never address or password).
    CALENDARS = "calendars"
    EVENTS = "events"
    AUDIT_LOG = "audit_log"
    # Their private calendar feeds (when made, whether revoked; never a token).
    CALENDAR_FEEDS = "calendar_feeds"


class ExportStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"


class ErasureStep(StrEnum):
    """Where a person's erasure is, in the order it goes."""

    STARTED = "started"
    SETTLING_REQUESTS = "settling_requests"
    FORGETTING_WORKFLOWS = "forgetting_workflows"
    DELETING_FREE_TEXT = "deleting_free_text"
    PSEUDONYMISING_EVENTS = "pseudonymising_events"
    PSEUDONYMISING_ROWS = "pseudonymising_rows"
    COMPLETED = "completed"


class ErasureRequester(StrEnum):
    """How the erasure was asked for."""

    OPERATOR = "operator"
    IAM = "iam"


class OpenRequestAction(StrEnum):
    """What an erasure does with a request of the person's that is still open."""

    CANCEL = "cancel"  # theirs, or a session they give: cancelled (account_erased)
    DECLINE = "decline"  # offered to them as consultant: declined, so another is asked
    WAIT = "wait"  # its session is in progress: it ends on its own


# --- linked calendars -----------------------------------------------------------------


class CalendarKind(StrEnum):
    """How a linked calendar is read: an iCalendar file over HTTP(S), or CalDAV."""

    ICS = "ics"
    CALDAV = "caldav"


class CalendarSyncOutcome(StrEnum):
    """What one sync of a calendar did."""

    UPDATED = "updated"  # fetched and stored afresh (all of it, or what changed)
    UNCHANGED = "unchanged"  # the server said nothing changed; the set stays
    FAILED = "failed"  # stale: the last good set stays, with the error
    GONE = "gone"  # unlinked meanwhile


# --- abuse limits -----------------------------------------------------------------------


class CallKind(StrEnum):
    """A user's calls spend from one rate-limit bucket per kind: polling a status
    (reads) cannot starve the same user's submissions (writes)."""

    READ = "read"
    WRITE = "write"
