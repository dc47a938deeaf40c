"""The scale scenario: its round-robin client, its order of layouts, its CPU arithmetic,
and one quick round on a stack of its own."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import httpx
import pytest

from bench.booking_load import RoundRobin
from bench.registry import load_scenarios
from bench.run import default_names
from bench.scenarios.scale import (
    BASE,
    COMPONENTS,
    LAYOUTS,
    Layout,
    component_of,
    cpu_per_booking,
    projection,
    round_order,
)
from tests.support.bench_runs import run_quick

API_1 = "http://127.0.0.1:8101"
API_2 = "http://127.0.0.1:8102"


async def test_round_robin_sends_each_request_to_the_next_api_process() -> None:
    seen: list[tuple[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["Host"]))
        return httpx.Response(200, json={"port": request.url.port})

    transport = RoundRobin([API_1, API_2], httpx.MockTransport(answer))
    async with httpx.AsyncClient(base_url=API_1, transport=transport) as http:
        for _ in range(3):
            await http.get("/v1/consultation-requests", params={"status": "pending_confirmation"})
        await http.post("/v1/consultation-requests/abc/confirm")

    query = "/v1/consultation-requests?status=pending_confirmation"
    assert seen == [
        (API_1 + query, "127.0.0.1:8101"),
        (API_2 + query, "127.0.0.1:8102"),
        (API_1 + query, "127.0.0.1:8101"),
        (API_2 + "/v1/consultation-requests/abc/confirm", "127.0.0.1:8102"),
    ]
    assert transport.sent == [2, 2]


def test_round_robin_needs_an_origin() -> None:
    with pytest.raises(ValueError, match="no origins"):
        RoundRobin([], httpx.MockTransport(lambda request: httpx.Response(200)))


def test_layouts_change_one_process_at_a_time_and_swap_places_between_rounds() -> None:
    walk = [layout for number in (1, 2, 3) for layout in round_order(number)]
    assert walk[0] == BASE
    for one, following in itertools.pairwise(walk):
        changed = abs(one.apis - following.apis) + abs(one.workers - following.workers)
        assert changed <= 1, (one, following)
    for number in (1, 2):
        assert sorted(round_order(number), key=str) == sorted(LAYOUTS, key=str)
    assert round_order(1)[0] == round_order(2)[-1] == BASE
    assert {(layout.apis, layout.workers) for layout in LAYOUTS} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert Layout(2, 1).label == "2 APIs, 1 worker"
    assert Layout(1, 2).key == "api1_worker2"


def test_cpu_per_booking_sums_the_processes_of_each_component() -> None:
    before = {"api 1": 10.0, "api 2": 1.0, "worker 1": 20.0, "temporal": 5.0, "postgresql": 3.0}
    after = {
        "api 1": 12.0,
        "api 2": 3.0,
        "worker 1": 26.0,
        "worker 2": 2.0,  # started after the first reading: all of it counts
        "temporal": 7.0,
        "postgresql": 4.0,
        "client": 1.0,
    }
    per_booking = cpu_per_booking(before, after, bookings=20)
    assert per_booking == pytest.approx(
        {"api": 0.2, "worker": 0.4, "temporal": 0.1, "postgresql": 0.05, "client": 0.05}
    )
    assert set(per_booking) == set(COMPONENTS)
    assert component_of("worker 2") == "worker"
    with pytest.raises(ValueError, match="no bookings"):
        cpu_per_booking(before, after, bookings=0)


def test_projection_inverts_the_cpu_per_booking() -> None:
    per_booking = {"api": 0.05, "worker": 0.1, "temporal": 0.06, "postgresql": 0.04, "client": 0.05}
    projected = projection(per_booking, cores=2)
    assert projected["service_cpu_s_per_booking"] == pytest.approx(0.25)
    assert projected["per_core"] == pytest.approx(4.0)  # bookings/s one core serves
    assert projected["ceiling"] == pytest.approx(2 / 0.3)  # the client shares the cores


def test_scale_runs_only_when_named() -> None:
    scenarios = load_scenarios()
    assert "scale" in scenarios
    assert "scale" not in default_names(scenarios)
    assert "booking" in default_names(scenarios)


def test_quick_scale_round_on_a_fresh_stack(tmp_path: Path) -> None:
    """One quick round: every layout measured, the ratios against the base, the CPU per
    booking by component, and the contention across two APIs and two workers."""
    results = tmp_path / "results"
    run_quick(["scale"], results, rounds=1, timeout=300)

    document = json.loads((results / "scale.json").read_text())
    assert document["quick"] is True
    assert document["ok"] is True
    assert all(check["ok"] for check in document["checks"]), document["checks"]
    figures, ratios = document["figures"], document["ratios"]
    for layout in LAYOUTS:
        key = f"scale.{layout.key}"
        assert figures[f"{key}.peak.rate"]["median"] > 0
        assert figures[f"{key}.half.submit.p99_ms"]["median"] > 0
        assert figures[f"{key}.cpu.worker_ms"]["median"] > 0
        assert figures[f"{key}.cpu.service_ms"]["median"] > 0
        # At least a submit, an inbox read, a confirm and a session read per booking.
        assert figures[f"{key}.api.requests_per_booking"]["min"] >= 4
        assert figures[f"{key}.cpu.api_per_request_ms"]["median"] > 0
        assert ratios[f"{key}.rate_over_ceiling"]["median"] > 0
    for layout in LAYOUTS[1:]:
        assert ratios[f"scale.{layout.key}.rate_over_base"]["median"] > 0
    assert figures["scale.contention.sessions"]["rounds"] == [4.0]
    evidence = document["evidence"]
    assert len(evidence["per_layout_and_round"]) == len(LAYOUTS)
    two_apis = [e for e in evidence["per_layout_and_round"] if e["layout"].startswith("2 APIs")]
    assert all(len(e["requests_served_per_api"]) == 2 for e in two_apis)
    assert evidence["projection"][BASE.key]["bookings_per_s_per_core"] > 0
    assert "## scale (quick)" in (results / "SUMMARY.md").read_text()
