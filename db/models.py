"""Typed models: every seed table and column, plus what a real booking system needs.

Double booking is impossible by construction: the exclusion constraint on
``consultant_availability_slots`` forbids two overlapping slots of one consultant,
and a booking takes one whole slot (carving a longer one first).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    FetchedValue,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.vocabulary import (
    CallKind,
    DeliveryStatus,
    ExportStatus,
    InboundEventState,
    RequestStatus,
    SessionStatus,
    SlotStatus,
)
from db.base import Base


def _allowed(values: type[StrEnum]) -> str:
    """``'a', 'b'`` for a CHECK constraint listing the allowed values."""
    return ", ".join(f"'{member.value}'" for member in values)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _updated_at() -> Mapped[datetime]:
    # Maintained by the ``set_updated_at`` trigger, so raw SQL updates keep it right too.
    return mapped_column(
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        server_onupdate=FetchedValue(),
    )


def _session_cap_checks() -> tuple[CheckConstraint, ...]:
    """Caps on sessions a day and a week: null (none) or a sensible count."""
    return tuple(
        CheckConstraint(
            f"{column} IS NULL OR {column} BETWEEN 1 AND {highest}", name=f"{column}_range"
        )
        for column, highest in (("max_sessions_per_day", 100), ("max_sessions_per_week", 500))
    )


def _buffer_checks() -> tuple[CheckConstraint, ...]:
    """Buffers before and after a session: null (none) or up to four hours."""
    return tuple(
        CheckConstraint(
            f"{column} IS NULL OR {column} BETWEEN 0 AND 240", name=f"{column[:-8]}_range"
        )
        for column in ("buffer_before_minutes", "buffer_after_minutes")
    )


class ServiceType(Base):
    """A kind of consultation on offer (seed: ``consultation_service_types``)."""

    __tablename__ = "consultation_service_types"
    __table_args__ = (
        CheckConstraint("default_duration_minutes > 0", name="duration_positive"),
        CheckConstraint(
            "confirmation_timeout_seconds IS NULL OR confirmation_timeout_seconds > 0",
            name="confirmation_timeout_positive",
        ),
        CheckConstraint(
            "start_interval_minutes IS NULL OR start_interval_minutes BETWEEN 5 AND 240",
            name="start_interval_range",
        ),
        *_buffer_checks(),
        CheckConstraint(
            "minimum_notice_minutes IS NULL OR minimum_notice_minutes BETWEEN 0 AND 527040",
            name="minimum_notice_range",
        ),
        CheckConstraint(
            "booking_horizon_days IS NULL OR booking_horizon_days BETWEEN 1 AND 730",
            name="booking_horizon_range",
        ),
        CheckConstraint(
            "cancel_cutoff_minutes IS NULL OR cancel_cutoff_minutes BETWEEN 0 AND 527040",
            name="cancel_cutoff_range",
        ),
        CheckConstraint(
            "reschedule_cutoff_minutes IS NULL OR reschedule_cutoff_minutes BETWEEN 0 AND 527040",
            name="reschedule_cutoff_range",
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    default_duration_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    required_specialization: Mapped[str | None] = mapped_column(String(100))
    confirmation_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    # Offered starts are this many minutes apart on the consultant's clock, from local
    # midnight; null: the service-wide default (BOOKING_DEFAULT_START_INTERVAL).
    start_interval_minutes: Mapped[int | None] = mapped_column(Integer)
    # Scheduling policies; each null means the service-wide behaviour (no buffer, no
    # horizon, the notice and cutoffs of the settings).
    buffer_before_minutes: Mapped[int | None] = mapped_column(Integer)
    buffer_after_minutes: Mapped[int | None] = mapped_column(Integer)
    minimum_notice_minutes: Mapped[int | None] = mapped_column(Integer)
    booking_horizon_days: Mapped[int | None] = mapped_column(Integer)
    cancel_cutoff_minutes: Mapped[int | None] = mapped_column(Integer)
    reschedule_cutoff_minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ConsultantProfile(Base):
    """Booking-specific details of a consultant (the identity lives in IAM)."""

    __tablename__ = "consultant_profiles"
    __table_args__ = (
        Index("ix_consultant_profiles_specializations", "specializations", postgresql_using="gin"),
        *_buffer_checks(),
        *_session_cap_checks(),
        CheckConstraint("linked_calendars >= 0", name="linked_calendars_counted"),
    )

    consultant_user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    bio: Mapped[str | None] = mapped_column(Text)
    specializations: Mapped[list[str]] = mapped_column(
        ARRAY(String(100)), nullable=False, server_default=text("'{}'::varchar[]")
    )
    is_available_for_booking: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("true")
    )
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    last_assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The consultant's own buffers (the larger of theirs and the service type's wins)
    # and caps on sessions of any type per day and per week on their own clock.
    buffer_before_minutes: Mapped[int | None] = mapped_column(Integer)
    buffer_after_minutes: Mapped[int | None] = mapped_column(Integer)
    max_sessions_per_day: Mapped[int | None] = mapped_column(Integer)
    max_sessions_per_week: Mapped[int | None] = mapped_column(Integer)
    # How many calendars the consultant linked (``consultant_calendars``; kept by a
    # trigger there): the search reads busy time only for consultants with some.
    linked_calendars: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ConsultantServiceLimit(Base):
    """A consultant's caps on sessions of one service type, per day and per week."""

    __tablename__ = "consultant_service_limits"
    __table_args__ = (*_session_cap_checks(),)

    consultant_user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("consultant_profiles.consultant_user_id", ondelete="CASCADE"),
        primary_key=True,
    )
    consultation_service_type_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("consultation_service_types.id", ondelete="CASCADE"),
        primary_key=True,
    )
    max_sessions_per_day: Mapped[int | None] = mapped_column(Integer)
    max_sessions_per_week: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class AvailabilitySlot(Base):
    """A stretch of a consultant's published time (seed: ``consultant_availability_slots``)."""

    __tablename__ = "consultant_availability_slots"
    __table_args__ = (
        CheckConstraint("end_time > start_time", name="end_after_start"),
        # The availability search bounds its index range scan by this maximum length.
        CheckConstraint("end_time - start_time <= interval '24 hours'", name="at_most_a_day"),
        CheckConstraint(f"status IN ({_allowed(SlotStatus)})", name="status_allowed"),
        CheckConstraint(
            "(status = 'held') = (held_by_request_id IS NOT NULL)", name="held_iff_holder"
        ),
        # Only a held or booked slot carries buffers: its range is the session plus them.
        CheckConstraint(
            "buffer_before_minutes BETWEEN 0 AND 240 AND buffer_after_minutes BETWEEN 0 AND 240 "
            "AND (status IN ('held', 'booked') "
            "OR (buffer_before_minutes = 0 AND buffer_after_minutes = 0))",
            name="buffers_only_around_sessions",
        ),
        ExcludeConstraint(
            ("consultant_user_id", "="),
            (func.tstzrange(text("start_time"), text("end_time")), "&&"),
            name="ex_availability_slots_no_overlap",
            using="gist",
        ),
        Index(
            "ix_availability_slots_consultant_start_end",
            "consultant_user_id",
            "start_time",
            "end_time",
        ),
        Index("ix_availability_slots_status", "status"),
        # The search walks free slots in start order: a partial index keeps it small.
        Index(
            "ix_availability_slots_available_start",
            "start_time",
            "id",
            postgresql_where=text("status = 'available'"),
            postgresql_include=["end_time", "consultant_user_id"],
        ),
        Index("ix_availability_slots_held_by_request_id", "held_by_request_id"),
        # Caps count a consultant's live holds by start: a small partial index.
        Index(
            "ix_availability_slots_held_consultant_start",
            "consultant_user_id",
            "start_time",
            postgresql_where=text("status = 'held'"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    consultant_user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("consultant_profiles.consultant_user_id", ondelete="CASCADE"),
        nullable=False,
    )
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    end_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(
        String(20), nullable=False, server_default=SlotStatus.AVAILABLE.value
    )
    held_by_request_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("consultation_requests.id", ondelete="SET NULL", use_alter=True),
    )
    hold_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The slot as the consultant published it, for the pieces a booking carved out of
    # it (null on a published slot itself): freed pieces of one published slot merge.
    carved_from_slot_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # A held or booked slot is the session with its buffers: the session starts
    # ``buffer_before_minutes`` after the slot and ends ``buffer_after_minutes`` before
    # its end, so the no-overlap constraint keeps buffered sessions apart.
    buffer_before_minutes: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )
    buffer_after_minutes: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ConsultationRequest(Base):
    """A learner's request for a consultation; its process runs in a workflow."""

    __tablename__ = "consultation_requests"
    __table_args__ = (
        CheckConstraint(f"status IN ({_allowed(RequestStatus)})", name="status_allowed"),
        CheckConstraint(
            "preferred_end_time IS NULL OR preferred_start_time IS NULL "
            "OR preferred_end_time > preferred_start_time",
            name="preferred_window_ordered",
        ),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        UniqueConstraint("requester_user_id", "idempotency_key"),
        Index(
            "ix_consultation_requests_requester_requested_at",
            "requester_user_id",
            "requested_at",
        ),
        Index(
            "ix_consultation_requests_assigned_status",
            "assigned_consultant_user_id",
            "status",
        ),
        # Lists are newest first, (requested_at, id) being the keyset cursor: an
        # operator's page, of one status or of all, walks one of these in order and
        # stops at the page size instead of sorting every matching request.
        Index("ix_consultation_requests_status_requested_at", "status", "requested_at", "id"),
        Index("ix_consultation_requests_requested_at", "requested_at", "id"),
        # Deleting or merging a slot looks up the requests asking for it.
        Index(
            "ix_consultation_requests_requested_slot_id",
            "requested_slot_id",
            postgresql_where=text("requested_slot_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    requester_user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    company_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    consultation_service_type_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("consultation_service_types.id"), nullable=False
    )
    preferred_consultant_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("consultant_profiles.consultant_user_id")
    )
    preferred_start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    preferred_end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The start the learner chose (the window is then exactly that session).
    requested_start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The learner's IANA zone, for their wall time in responses and events; null in
    # requests stored before requests had one (BOOKING_DEFAULT_LEARNER_TIME_ZONE applies).
    learner_time_zone: Mapped[str | None] = mapped_column(String(64))
    request_details: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        String(32), nullable=False, server_default=RequestStatus.PENDING_ASSIGNMENT.value
    )
    status_reason: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    assigned_consultant_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("consultant_profiles.consultant_user_id")
    )
    scheduled_session_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("scheduled_sessions.id", ondelete="SET NULL", use_alter=True),
        unique=True,
    )
    requested_slot_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("consultant_availability_slots.id", ondelete="SET NULL"),
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    confirmation_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))


class ConsultationRequestDraft(Base):
    """A request's free-text details, staged by the API until the workflow stores the
    request; so the text reaches the request row without entering a workflow history."""

    __tablename__ = "consultation_request_drafts"
    __table_args__ = (Index("ix_consultation_request_drafts_created_at", "created_at"),)

    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    requester_user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    request_details: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created_at()


class ScheduledSession(Base):
    """A confirmed consultation on a consultant's calendar (seed: ``scheduled_sessions``)."""

    __tablename__ = "scheduled_sessions"
    __table_args__ = (
        CheckConstraint(f"status IN ({_allowed(SessionStatus)})", name="status_allowed"),
        CheckConstraint("scheduled_end_time > scheduled_start_time", name="end_after_start"),
        Index(
            "ix_scheduled_sessions_consultant_start",
            "consultant_user_id",
            "scheduled_start_time",
        ),
        Index(
            "ix_scheduled_sessions_requester_start",
            "requester_user_id",
            "scheduled_start_time",
        ),
        Index("ix_scheduled_sessions_status", "status"),
        Index("ix_scheduled_sessions_meeting_session", "meeting_platform_session_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    consultation_request_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("consultation_requests.id"), nullable=False, unique=True
    )
    requester_user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    consultant_user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("consultant_profiles.consultant_user_id"), nullable=False
    )
    consultation_service_type_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("consultation_service_types.id"), nullable=False
    )
    availability_slot_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("consultant_availability_slots.id", ondelete="SET NULL"),
    )
    scheduled_start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    scheduled_end_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    meeting_platform_session_id: Mapped[str | None] = mapped_column(String(255))
    meeting_platform_join_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        String(32), nullable=False, server_default=SessionStatus.SCHEDULED.value
    )
    cancellation_reason: Mapped[str | None] = mapped_column(String(500))
    cancelled_by: Mapped[str | None] = mapped_column(String(20))
    learner_joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consultant_joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    actual_start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    actual_end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The iCalendar SEQUENCE of the session's event: grows on every reschedule and on
    # the cancel, so calendar apps replace their copy.
    calendar_sequence: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class DomainEvent(Base):
    """The transactional outbox: one row per transition, written with the state change."""

    __tablename__ = "domain_events"
    __table_args__ = (
        Index("ix_domain_events_consultation_request_id", "consultation_request_id"),
        Index("ix_domain_events_event_type_sequence", "event_type", "sequence"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    # Feed order. A reader must not pass a sequence whose transaction is still open,
    # hence ``transaction_id`` (see the event feed).
    sequence: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    transaction_id: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        server_default=text("(pg_current_xact_id()::text)::bigint"),
    )
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    schema_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    consultation_request_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    scheduled_session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # Makes an activity retried after a commit emit nothing twice.
    dedupe_key: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )


# --- Events and integrations: outgoing webhooks, inbound meeting-platform events -----

# The feed and the webhook fan-out walk events in (transaction_id, sequence) order:
# the only order in which a reader can never pass an event that commits later.
Index(
    "ix_domain_events_transaction_id_sequence",
    DomainEvent.transaction_id,
    DomainEvent.sequence,
)


class WebhookSubscription(Base):
    """An endpoint that receives domain events as signed webhooks (Standard Webhooks)."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        CheckConstraint(
            "(previous_secret IS NULL) = (previous_secret_expires_at IS NULL)",
            name="previous_secret_has_expiry",
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    # Empty means every event type.
    event_types: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, server_default=text("'{}'::varchar[]")
    )
    # ``whsec_`` + base64; kept readable because every delivery is signed with it.
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    # After a rotation the old secret signs too, until it expires, so receivers can
    # switch over without rejecting deliveries.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    description: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class WebhookDelivery(Base):
    """One domain event on its way to one subscription, with its retry state."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN ({_allowed(DeliveryStatus)})", name="status_allowed"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint(
            "(status = 'delivering') = (locked_until IS NOT NULL)",
            name="locked_iff_delivering",
        ),
        UniqueConstraint("subscription_id", "event_id"),
        # The dispatcher's pick: due retries, and claims whose dispatcher died.
        Index(
            "ix_webhook_deliveries_pending_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_webhook_deliveries_delivering_locked_until",
            "locked_until",
            postgresql_where=text("status = 'delivering'"),
        ),
        # The per-request ordering check: is an earlier one still unfinished?
        Index(
            "ix_webhook_deliveries_unfinished_per_request",
            "subscription_id",
            "consultation_request_id",
            "event_sequence",
            postgresql_where=text("status IN ('pending', 'delivering')"),
        ),
        Index(
            "ix_webhook_deliveries_subscription_event_sequence",
            "subscription_id",
            "event_sequence",
        ),
        Index("ix_webhook_deliveries_event_id", "event_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("domain_events.id", ondelete="CASCADE"), nullable=False
    )
    # Copied from the (immutable) event so the ordering check needs no join.
    event_sequence: Mapped[int] = mapped_column(BigInteger, nullable=False)
    consultation_request_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=DeliveryStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class WebhookFanoutCursor(Base):
    """How far the fan-out has turned events into deliveries: a single row."""

    __tablename__ = "webhook_fanout_cursor"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    last_transaction_id: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=text("0")
    )
    last_sequence: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    updated_at: Mapped[datetime] = _updated_at()


class InboundWebhookEvent(Base):
    """An event a partner pushed to us, remembered so a redelivery has no second effect:
    ``received`` until it was passed on, then ``delivered``."""

    __tablename__ = "inbound_webhook_events"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint(f"state IN ({_allowed(InboundEventState)})", name="state_allowed"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    scheduled_session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    received_at: Mapped[datetime] = _created_at()
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateLimitBucket(Base):
    """One user's shared rate-limit bucket for one kind of call (``api.shared_rate_limit``).

    ``theoretical_arrival`` is the generic cell rate algorithm's single number: when
    the bucket will be full again. A request is granted while it is at most a burst's
    worth of intervals ahead of now, and moves it one interval on. A row whose time
    has passed is a full bucket, exactly like no row, so such rows are deleted freely.

    UNLOGGED: written on every request, so no WAL for it; a crash or a failover empties
    it, which only gives every user a full bucket once. Half-empty pages keep its
    updates HOT (the updated column is in no index).
    """

    __tablename__ = "rate_limit_buckets"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_allowed(CallKind)})", name="kind_allowed"),
        {"prefixes": ["UNLOGGED"], "postgresql_with": {"fillfactor": "50"}},
    )

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    theoretical_arrival: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


# --- Personal data: the audit trail ---------------------------------------------------


class AuditLogEntry(Base):
    """One change to the catalogue or the configuration: who, what, when, and the
    changed fields before and after (never a secret). Written in the transaction of
    the change itself (``db.audit.record``), so neither exists without the other."""

    __tablename__ = "audit_log"
    __table_args__ = (
        # Newest first, (occurred_at, id) being the keyset cursor: all entries, or one
        # target's, or one actor's, each an ordered index walk.
        Index("ix_audit_log_occurred_at", "occurred_at", "id"),
        Index("ix_audit_log_target", "target_type", "target_id", "occurred_at", "id"),
        Index("ix_audit_log_actor", "actor_id", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # Null when no person acted (an inbound IAM event).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_kind: Mapped[str] = mapped_column(String(32), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str] = mapped_column(String(64), nullable=False)
    target_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # {"field": {"before": ..., "after": ...}} for the fields that changed.
    changes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )


# --- Personal data: what the retention sweep walks (db.retention) ----------------------
# Each sweep takes the oldest due rows first; these keep that a short index walk.

Index("ix_domain_events_occurred_at", DomainEvent.occurred_at)
Index(
    "ix_webhook_deliveries_finished_updated_at",
    WebhookDelivery.updated_at,
    postgresql_where=text("status IN ('succeeded', 'parked')"),
)
Index("ix_inbound_webhook_events_received_at", InboundWebhookEvent.received_at)
Index(
    "ix_consultation_requests_details_kept",
    ConsultationRequest.updated_at,
    postgresql_where=text("request_details IS NOT NULL"),
)
Index(
    "ix_scheduled_sessions_join_url_kept",
    ScheduledSession.updated_at,
    postgresql_where=text("meeting_platform_join_url IS NOT NULL"),
)


# --- Personal data: exports -------------------------------------------------------------


class PersonalDataExport(Base):
    """One export of everything the service holds about a person, built by its
    workflow in parts and downloaded as one JSON document until it expires."""

    __tablename__ = "personal_data_exports"
    __table_args__ = (
        CheckConstraint(f"status IN ({_allowed(ExportStatus)})", name="status_allowed"),
        Index("ix_personal_data_exports_subject_id", "subject_id"),
        Index("ix_personal_data_exports_requested_at", "requested_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    subject_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    requested_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=ExportStatus.PENDING.value
    )
    requested_at: Mapped[datetime] = _created_at()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PersonalDataExportPart(Base):
    """A page of one section of an export: a JSON array of items. Parts are numbered
    in document order, so the download streams them one after another."""

    __tablename__ = "personal_data_export_parts"

    export_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("personal_data_exports.id", ondelete="CASCADE"),
        primary_key=True,
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    section: Mapped[str] = mapped_column(String(32), nullable=False)
    items: Mapped[list[Any]] = mapped_column(JSONB, nullable=False)


# --- Personal data: erasures ------------------------------------------------------------


class PersonErasure(Base):
    """That a person's data was (or is being) erased: when, asked by whom, how far it
    got. Keyed by the person's pseudonym; their id (``subject_id``) is kept only while
    the erasure runs, so its workflow can find their rows, and cleared when it ends.
    An erased person's token is recognised by the pseudonym."""

    __tablename__ = "person_erasures"
    __table_args__ = (
        CheckConstraint(
            "(completed_at IS NULL) = (subject_id IS NOT NULL)", name="id_kept_while_running"
        ),
        CheckConstraint("requested_via IN ('operator', 'iam')", name="requested_via_allowed"),
    )

    pseudonym: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    requested_via: Mapped[str] = mapped_column(String(16), nullable=False)
    # The operator who asked; null when the IAM did.
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    requested_at: Mapped[datetime] = _created_at()
    step: Mapped[str] = mapped_column(String(32), nullable=False, server_default="started")
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- Calendars: busy time in, sessions out ------------------------------------------------


class ConsultantCalendar(Base):
    """An external calendar of a consultant whose events make them busy: an ICS address
    or a CalDAV calendar. The address (which often carries a private token) and the
    password are stored encrypted and never returned; ``address_hint`` is what may be
    shown. The sync state says what the server last told us (ETag, Last-Modified, a
    CalDAV sync token or ctag) and whether the last fetch failed."""

    __tablename__ = "consultant_calendars"
    __table_args__ = (
        CheckConstraint("kind IN ('ics', 'caldav')", name="kind_allowed"),
        Index("ix_consultant_calendars_consultant_user_id", "consultant_user_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    consultant_user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("consultant_profiles.consultant_user_id", ondelete="CASCADE"),
        nullable=False,
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(200))
    address_ciphertext: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    address_hint: Mapped[str] = mapped_column(String(300), nullable=False)
    username: Mapped[str | None] = mapped_column(String(200))
    password_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    # What the server said last time, for a conditional or incremental fetch.
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    sync_token: Mapped[str | None] = mapped_column(Text)
    ctag: Mapped[str | None] = mapped_column(Text)
    # The end of the window the stored busy set was expanded over. An unchanged
    # calendar (304, same ctag) keeps its set, but the window moves on with time: once
    # it falls short, the next sync fetches and expands everything again.
    expanded_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when a fetch fails, cleared by the next good one: the busy set is then the
    # last good one, and the calendar is stale since this moment.
    stale_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(1000))
    busy_interval_count: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class BusyInterval(Base):
    """A time a consultant is busy elsewhere, expanded from one of their calendars
    (a piece of at most a day of it). Only the times are kept, never an event's title
    or attendees. ``source_key`` names
    the calendar object it came from (a CalDAV href, an ICS UID), so an incremental
    sync replaces just that object's intervals."""

    __tablename__ = "consultant_busy_intervals"
    __table_args__ = (
        CheckConstraint("end_time > start_time", name="end_after_start"),
        # Stored in pieces of at most a day (a longer event is several rows), so "is
        # this consultant busy during [a, b)?" is a bounded range of a B-tree, which
        # serves many consultants in one scan (``= ANY``), unlike a GiST probe each.
        CheckConstraint("end_time - start_time <= interval '24 hours'", name="at_most_a_day"),
        Index(
            "ix_consultant_busy_intervals_consultant_start",
            "consultant_user_id",
            "start_time",
            postgresql_include=["end_time"],
        ),
        Index("ix_consultant_busy_intervals_calendar_source", "calendar_id", "source_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    calendar_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("consultant_calendars.id", ondelete="CASCADE"),
        nullable=False,
    )
    consultant_user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    source_key: Mapped[str] = mapped_column(String(1000), nullable=False)
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    end_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class CalendarFeed(Base):
    """A private, revocable iCalendar feed of one person's sessions. Only the SHA-256
    of its token is stored: the token is shown once, when the feed is made."""

    __tablename__ = "calendar_feeds"
    __table_args__ = (
        CheckConstraint("owner_role IN ('consultant', 'learner')", name="owner_role_allowed"),
        Index("ix_calendar_feeds_owner", "owner_role", "owner_user_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    owner_role: Mapped[str] = mapped_column(String(16), nullable=False)
    owner_user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    token_sha256: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    created_at: Mapped[datetime] = _created_at()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
