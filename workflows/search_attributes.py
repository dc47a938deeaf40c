"""Custom search attributes that make the Temporal UI answer "what is stuck and why".

Kept free of anything but ``temporalio`` so workflow code may import it.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

BOOKING_STATUS = SearchAttributeKey.for_keyword("BookingStatus")
"""The request status (``pending_assignment`` … ``completed``)."""

CONSULTANT_ID = SearchAttributeKey.for_keyword("ConsultantId")
REQUESTER_ID = SearchAttributeKey.for_keyword("RequesterId")
SERVICE_TYPE_ID = SearchAttributeKey.for_keyword("ServiceTypeId")
SESSION_START = SearchAttributeKey.for_datetime("SessionStart")
MEETING_STATUS = SearchAttributeKey.for_keyword("MeetingStatus")
"""The booked session's meeting: ``pending``, ``ready`` or ``needs_update``."""

ALL_SEARCH_ATTRIBUTES = (
    BOOKING_STATUS,
    CONSULTANT_ID,
    REQUESTER_ID,
    SERVICE_TYPE_ID,
    SESSION_START,
    MEETING_STATUS,
)
