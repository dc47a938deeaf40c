"""Whole consultations over HTTP: submit, confirm or decline, cancel, reschedule,
assign, report a no-show — with the real workflow, worker and database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.e2e.support import (
    REQUESTS,
    SESSIONS,
    WAIT_LIMIT,
    Service,
    days_ahead,
    next_whole_minute_to_book,
    seconds_until,
    utc_now,
    wait_until,
)
from tests.support.problems import assert_problem

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]


async def test_happy_path_from_search_to_a_session_with_a_join_link(service: Service) -> None:
    service_type = await service.service_type(minutes=45, start_interval_minutes=15)
    consultant = await service.consultant()
    start = days_ahead(3)
    slot = await service.slot(consultant, start, start + timedelta(hours=2))
    learner, stranger = service.learner(), service.learner()

    found = await service.http.get(
        "/v1/availability/search",
        params={
            "service_type_id": str(service_type),
            "from": days_ahead(2).isoformat(),
            "to": days_ahead(4).isoformat(),
        },
        headers=learner.headers,
    )
    assert found.status_code == 200, found.text
    offers = found.json()["items"]
    # Every quarter hour at which the 45 minutes fit into the two hours.
    assert [o["start_time"] for o in offers] == [
        (start + n * timedelta(minutes=15)).isoformat().replace("+00:00", "Z") for n in range(6)
    ]
    assert {o["slot_id"] for o in offers} == {str(slot)}
    offer = offers[0]

    submitted = await service.submit(
        learner,
        {
            "service_type_id": service_type,
            "slot_id": offer["slot_id"],
            "start": offer["start_time"],
            "details": "Career change advice",
        },
    )
    assert submitted.status_code == 201, submitted.text
    request = submitted.json()
    assert submitted.headers["location"] == f"{REQUESTS}/{request['id']}"
    assert request["requester_id"] == str(learner.user_id)
    assert request["details"] == "Career change advice"
    assert request["requested_slot_id"] == str(slot)
    # Stored before the POST answered: the very next read sees it.
    assert (await service.request(request["id"], learner))["id"] == request["id"]

    offered = await service.wait_offered(request["id"], consultant)
    assert offered["live"]["confirmation_deadline"] == offered["confirmation_deadline"]
    assert offered["live"]["attempt"] == 1
    inbox = await service.http.get(
        REQUESTS, params={"status": "pending_confirmation"}, headers=consultant.headers
    )
    assert [r["id"] for r in inbox.json()["items"]] == [request["id"]]

    confirmed = await service.act(consultant, request["id"], "confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "scheduled"
    session_id = confirmed.json()["session_id"]
    ready = await service.wait_session(session_id, lambda s: s["join_url"], "meeting ready")

    assert ready["start"] == start.isoformat().replace("+00:00", "Z")
    assert ready["end"] == (start + timedelta(minutes=45)).isoformat().replace("+00:00", "Z")
    assert ready["join_url"].startswith("https://")
    for party in (learner, consultant):
        seen = await service.session(session_id, party)
        assert seen["join_url"] == ready["join_url"]
    mine = await service.http.get(SESSIONS, headers=learner.headers)
    assert [s["id"] for s in mine.json()["items"]] == [session_id]
    assert "join_url" not in mine.json()["items"][0]
    assert_problem(
        await service.http.get(f"{SESSIONS}/{session_id}", headers=stranger.headers), 404
    )
    assert_problem(
        await service.http.get(f"{REQUESTS}/{request['id']}", headers=stranger.headers), 404
    )
    assert (await service.http.get(REQUESTS, headers=stranger.headers)).json()["items"] == []
    assert await service.slot_status(consultant, slot) == "booked"


async def test_a_decline_sends_the_request_to_the_next_consultant(service: Service) -> None:
    service_type = await service.service_type()
    first, second = await service.consultant(), await service.consultant()
    early, late = days_ahead(3, hour=9), days_ahead(3, hour=14)
    first_slot = await service.slot(first, early, early + timedelta(hours=1))
    second_slot = await service.slot(second, late, late + timedelta(hours=1))
    learner = service.learner()
    request = await service.submitted(
        learner,
        {
            "service_type_id": service_type,
            "preferred_start": days_ahead(2),
            "preferred_end": days_ahead(5),
        },
    )
    await service.wait_offered(request["id"], first)  # the earliest fit comes first

    assert_problem(await service.act(first, request["id"], "decline", {"reason": "nope"}), 422)
    declined = await service.act(first, request["id"], "decline", {"reason": "unavailable"})
    assert declined.status_code == 200, declined.text
    offered = await service.wait_offered(request["id"], second)
    assert offered["attempts"] == 2
    assert await service.slot_status(first, first_slot) == "available"
    # The first consultant is out of it now, and cannot take it back.
    assert_problem(await service.act(first, request["id"], "confirm"), 403)

    confirmed = await service.act(second, request["id"], "confirm")
    assert confirmed.status_code == 200, confirmed.text
    session = await service.session(confirmed.json()["session_id"])
    assert session["consultant_id"] == str(second.user_id)
    assert session["slot_id"] == str(second_slot)


async def test_a_learner_cancels_a_request_awaiting_confirmation(service: Service) -> None:
    service_type = await service.service_type()
    consultant = await service.consultant()
    slot = await service.slot(consultant, days_ahead(3), days_ahead(3) + timedelta(hours=1))
    learner, other = service.learner(), service.learner()
    request = await service.submitted(learner, {"service_type_id": service_type})
    await service.wait_offered(request["id"], consultant)

    assert_problem(await service.act(other, request["id"], "cancel"), 404)
    assert_problem(await service.act(consultant, request["id"], "cancel"), 403)
    cancelled = await service.act(learner, request["id"], "cancel", {"reason": "illness"})

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["status_reason"] == "cancelled_by_requester"
    assert await service.slot_status(consultant, slot) == "available"
    late = assert_problem(await service.act(consultant, request["id"], "confirm"), 409)
    assert late["type"].endswith("/request-finished")
    again = assert_problem(await service.act(learner, request["id"], "cancel"), 409)
    assert again["type"].endswith("/request-finished")


@pytest.mark.parametrize("canceller", ["learner", "consultant", "operator"])
async def test_each_party_can_cancel_a_scheduled_session(service: Service, canceller: str) -> None:
    service_type = await service.service_type()
    consultant = await service.consultant()
    slot = await service.slot(consultant, days_ahead(3), days_ahead(3) + timedelta(hours=1))
    learner = service.learner()
    session = await service.book(
        learner, consultant, {"service_type_id": service_type, "slot_id": slot}
    )
    actor = {"learner": learner, "consultant": consultant, "operator": service.operator}[canceller]
    if canceller == "consultant":
        # A consultant owes the learner a reason.
        assert_problem(await service.session_act(actor, session["id"], "cancel"), 422)
    assert_problem(await service.session_act(service.learner(), session["id"], "cancel"), 404)

    cancelled = await service.session_act(
        actor, session["id"], "cancel", {"reason": "schedule_conflict"}
    )

    assert cancelled.status_code == 200, cancelled.text
    expected = {
        "learner": "cancelled_by_user",
        "consultant": "cancelled_by_consultant",
        "operator": "cancelled",
    }[canceller]
    assert cancelled.json()["status"] == expected
    assert cancelled.json()["cancellation_reason"] == "schedule_conflict"
    request = await service.request(session["request_id"])
    assert request["status"] == "cancelled"
    assert await service.slot_status(consultant, slot) == "available"
    again = await service.session_act(actor, session["id"], "cancel", {"reason": "other"})
    assert_problem(again, 409)


async def test_a_session_moves_to_another_free_slot_of_its_consultant(service: Service) -> None:
    service_type = await service.service_type()
    consultant, other = await service.consultant(), await service.consultant()
    first = await service.slot(consultant, days_ahead(3), days_ahead(3) + timedelta(hours=1))
    later = days_ahead(4, hour=15)
    second = await service.slot(consultant, later, later + timedelta(hours=1))
    foreign = await service.slot(other, later, later + timedelta(hours=1))
    learner = service.learner()
    session = await service.book(
        learner, consultant, {"service_type_id": service_type, "slot_id": first}
    )

    assert_problem(
        await service.session_act(learner, session["id"], "reschedule", {"slot_id": foreign}),
        422,
    )
    assert_problem(
        await service.session_act(learner, session["id"], "reschedule", {"slot_id": first}),
        422,  # already there
    )
    moved = await service.session_act(learner, session["id"], "reschedule", {"slot_id": second})

    assert moved.status_code == 200, moved.text
    assert moved.json()["slot_id"] == str(second)
    assert moved.json()["start"] == later.isoformat().replace("+00:00", "Z")
    assert moved.json()["status"] == "scheduled"
    assert moved.json()["join_url"] == session["join_url"]
    assert await service.slot_status(consultant, first) == "available"
    assert await service.slot_status(consultant, second) == "booked"
    taken = assert_problem(
        await service.session_act(consultant, session["id"], "reschedule", {"slot_id": second}),
        422,
    )
    assert "already" in taken["detail"]


async def test_an_operator_assigns_a_request_nobody_could_take(service: Service) -> None:
    service_type = await service.service_type()
    learner = service.learner()
    request = await service.submitted(
        learner,
        {
            "service_type_id": service_type,
            "preferred_start": days_ahead(2),
            "preferred_end": days_ahead(5),
        },
    )
    waiting = await service.wait_request(
        request["id"],
        lambda r: r["live"] is not None and r["live"]["next_assignment_retry_at"] is not None,
        "waiting for a consultant",
    )
    assert waiting["status"] == "pending_assignment"
    consultant = await service.consultant()
    slot = await service.slot(consultant, days_ahead(3), days_ahead(3) + timedelta(hours=1))
    body = {"consultant_id": str(consultant.user_id), "slot_id": str(slot)}

    assert_problem(await service.act(learner, request["id"], "assign", body), 403)
    assigned = await service.act(service.operator, request["id"], "assign", body)

    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "pending_confirmation"
    assert assigned.json()["assigned_consultant_id"] == str(consultant.user_id)
    confirmed = await service.act(consultant, request["id"], "confirm")
    assert confirmed.status_code == 200, confirmed.text
    again = assert_problem(await service.act(service.operator, request["id"], "assign", body), 409)
    assert again["type"].endswith("/invalid-state")


async def test_the_wrong_consultant_cannot_confirm_and_nothing_changes(service: Service) -> None:
    service_type = await service.service_type()
    assigned, intruder = await service.consultant(), await service.consultant()
    await service.slot(assigned, days_ahead(3), days_ahead(3) + timedelta(hours=1))
    learner = service.learner()
    request = await service.submitted(learner, {"service_type_id": service_type})
    before = await service.wait_offered(request["id"], assigned)

    # To a consultant it was never offered to, the request does not exist.
    assert_problem(await service.act(intruder, request["id"], "confirm"), 404)
    assert_problem(await service.act(intruder, request["id"], "decline", {"reason": "other"}), 404)
    assert_problem(await service.act(learner, request["id"], "confirm"), 403)

    after = await service.request(request["id"])
    assert after == before
    confirmed = await service.act(assigned, request["id"], "confirm")
    assert confirmed.status_code == 200, confirmed.text


async def test_confirming_after_the_deadline_is_refused(service: Service) -> None:
    service_type = await service.service_type(confirmation_timeout_seconds=2)
    consultant = await service.consultant()
    slot = await service.slot(consultant, days_ahead(3), days_ahead(3) + timedelta(hours=1))
    learner = service.learner()
    request = await service.submitted(learner, {"service_type_id": service_type})
    await service.wait_offered(request["id"], consultant)

    expired = await service.wait_request(
        request["id"], lambda r: r["status"] == "pending_assignment", "confirmation expired"
    )
    late = assert_problem(await service.act(consultant, request["id"], "confirm"), 409)

    assert expired["attempts"] == 1
    assert expired["assigned_consultant_id"] is None
    assert late["type"].endswith("/invalid-state")
    assert await service.slot_status(consultant, slot) == "available"


async def test_a_consultant_reports_a_learner_who_did_not_show_up(service: Service) -> None:
    """A session that starts now: sessions booked at short notice start on the next
    whole minute, so this test waits for it."""
    service_type = await service.service_type(minutes=1)
    consultant = await service.consultant()
    start = await next_whole_minute_to_book(
        at_least=timedelta(seconds=5), margin=timedelta(seconds=10)
    )
    slot = await service.slot(
        consultant, start - timedelta(seconds=4), start + timedelta(minutes=1)
    )
    learner = service.learner()
    session = await service.book(
        learner, consultant, {"service_type_id": service_type, "slot_id": slot}
    )
    assert session["start"] == start.isoformat().replace("+00:00", "Z")
    early = assert_problem(
        await service.session_act(consultant, session["id"], "no-show", {"party": "learner"}), 409
    )
    assert early["type"].endswith("/invalid-state")

    await wait_until(
        lambda: service.session(session["id"]),
        lambda s: s["status"] == "in_progress",
        within=seconds_until(start) + WAIT_LIMIT,
        what="session started",
    )
    await wait_until(utc_now, lambda now: now > start + timedelta(seconds=1), what="grace over")
    assert_problem(
        await service.session_act(learner, session["id"], "no-show", {"party": "learner"}), 403
    )
    assert_problem(
        await service.session_act(consultant, session["id"], "no-show", {"party": "consultant"}),
        403,
    )
    reported = await service.session_act(consultant, session["id"], "no-show", {"party": "learner"})

    assert reported.status_code == 200, reported.text
    assert reported.json()["status"] == "no_show_user"
    request = await service.request(session["request_id"])
    assert (request["status"], request["status_reason"]) == ("completed", "no_show_user")
