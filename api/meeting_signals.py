"""Forwarding meeting-platform events to the request's workflow as signals.

The signals and their argument dataclasses are the workflow's own
(``ConsultationWorkflow`` handlers, ``workflows.contracts.messages`` types); referencing the
handlers rather than their names keeps the two from drifting apart.
"""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from integrations.meeting_webhooks import MeetingEventType, MeetingPlatformEvent
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import (
    MeetingEnded,
    MeetingStarted,
    ParticipantJoined,
    ParticipantLeft,
)
from workflows.contracts.names import workflow_id_for


async def signal_meeting_event(
    client: Client, request_id: uuid.UUID, event: MeetingPlatformEvent
) -> bool:
    """Signal the request's workflow; ``False`` if it no longer runs (nothing to tell).

    Other Temporal failures propagate, so the caller can answer "try again later".
    The payloads carry a time and a role only, nothing personal.
    """
    handle = client.get_workflow_handle(workflow_id_for(request_id))
    at = event.occurred_at
    try:
        match event.type:
            case MeetingEventType.MEETING_STARTED:
                await handle.signal(
                    ConsultationWorkflow.meeting_started, MeetingStarted(occurred_at=at)
                )
            case MeetingEventType.MEETING_ENDED:
                await handle.signal(
                    ConsultationWorkflow.meeting_ended, MeetingEnded(occurred_at=at)
                )
            case MeetingEventType.PARTICIPANT_JOINED:
                assert event.participant is not None  # the model requires one here
                await handle.signal(
                    ConsultationWorkflow.participant_joined,
                    ParticipantJoined(role=event.participant.role, occurred_at=at),
                )
            case MeetingEventType.PARTICIPANT_LEFT:
                assert event.participant is not None
                await handle.signal(
                    ConsultationWorkflow.participant_left,
                    ParticipantLeft(role=event.participant.role, occurred_at=at),
                )
    except RPCError as exc:
        # Completed, failed or never started: the request is past caring about attendance.
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
