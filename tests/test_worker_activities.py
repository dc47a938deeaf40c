"""The worker registers one implementation per activity the workflow calls."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.activity import _Definition

from core.settings import Environment, MeetingProvider, Settings
from integrations.meetings.factory import build_meeting_platform
from integrations.meetings.http import HttpMeetingPlatform
from worker import build_activities
from workflows.contracts.calendar_sync import CalendarActivity
from workflows.contracts.erasure import ErasureActivity
from workflows.contracts.export import ExportActivity
from workflows.contracts.names import ActivityName
from workflows.contracts.retention import RetentionActivity
from workflows.registry import WORKFLOWS

TEST_SECRET = SecretStr("unit-test-secret-of-at-least-32-characters")


def test_every_activity_the_workflow_calls_is_registered_once() -> None:
    settings = Settings(environment=Environment.TEST, jwt_secret=TEST_SECRET)
    activities = build_activities(async_sessionmaker[AsyncSession](), settings)
    names: list[str] = []
    for function in activities:
        definition = _Definition.from_callable(function)
        assert definition is not None
        assert definition.name is not None
        names.append(definition.name)
    expected = [
        name.value
        for names_of in (
            ActivityName,
            RetentionActivity,
            ExportActivity,
            ErasureActivity,
            CalendarActivity,
        )
        for name in names_of
    ]
    assert sorted(names) == sorted(expected)


def test_the_consultation_workflow_is_registered() -> None:
    assert "ConsultationWorkflow" in {workflow.__name__ for workflow in WORKFLOWS}


def test_the_calendar_sync_workflow_is_registered() -> None:
    assert "CalendarSyncWorkflow" in {workflow.__name__ for workflow in WORKFLOWS}


def test_the_http_provider_is_chosen_by_settings() -> None:
    settings = Settings(
        environment=Environment.TEST,
        jwt_secret=TEST_SECRET,
        meeting_provider=MeetingProvider.HTTP,
        meeting_api_url="https://platform.example.test",
        meeting_api_token=SecretStr("token"),
    )
    assert isinstance(build_meeting_platform(settings), HttpMeetingPlatform)
