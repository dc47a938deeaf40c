"""The workflow's type and ids, and the names its activities are registered under."""

from __future__ import annotations

import uuid
from enum import StrEnum

WORKFLOW_NAME = "ConsultationWorkflow"
WORKFLOW_ID_PREFIX = "consultation-request-"


def workflow_id_for(request_id: uuid.UUID) -> str:
    """The one workflow id of a request: ``consultation-request-<uuid>``."""
    return f"{WORKFLOW_ID_PREFIX}{request_id}"


class ActivityName(StrEnum):
    """Activities are referenced by name so no database or HTTP code is imported by
    the workflow; the implementations in ``activities/`` register under these names."""

    PERSIST_REQUEST = "consultation.persist_request"
    FIND_CANDIDATES = "consultation.find_candidates"
    HOLD_SLOT = "consultation.hold_slot"
    RELEASE_HOLD = "consultation.release_hold"
    REMIND_CONFIRMATION = "consultation.remind_confirmation"
    REJECT_REQUEST = "consultation.reject_request"
    CANCEL_REQUEST = "consultation.cancel_request"
    RESERVE = "session.reserve"
    CREATE_MEETING = "session.create_meeting"
    RESCHEDULE_MEETING = "session.reschedule_meeting"
    CANCEL_MEETING = "session.cancel_meeting"
    RESCHEDULE_SESSION = "session.reschedule"
    CANCEL_SESSION = "session.cancel"
    SEND_REMINDER = "session.send_reminder"
    START_SESSION = "session.start"
    COMPLETE_SESSION = "session.complete"
    MARK_NO_SHOW = "session.mark_no_show"
