"""Request lists walk an index in page order, however many requests match: an
operator's page of one status (or of all) must not sort every matching request."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

REQUESTS = 3000

SEED = text(
    """
    WITH service_type AS (
        INSERT INTO consultation_service_types (name, default_duration_minutes)
        VALUES ('plans', 30) RETURNING id)
    INSERT INTO consultation_requests
        (requester_user_id, consultation_service_type_id, status, requested_at)
    SELECT gen_random_uuid(), service_type.id,
           CASE WHEN n % 10 = 0 THEN 'pending_confirmation' ELSE 'scheduled' END,
           now() - n * interval '1 minute'
      FROM service_type, generate_series(1, :requests) AS n
    """
)

PAGE = "SELECT * FROM consultation_requests {where} ORDER BY requested_at DESC, id DESC LIMIT 51"


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (
            "WHERE status IN ('pending_confirmation')",
            "ix_consultation_requests_status_requested_at",
        ),
        ("", "ix_consultation_requests_requested_at"),
    ],
    ids=["one_status", "all"],
)
async def test_a_page_is_an_ordered_index_walk(
    clean_database: AsyncEngine, where: str, index: str
) -> None:
    async with clean_database.begin() as connection:
        await connection.execute(SEED, {"requests": REQUESTS})
        await connection.execute(text("ANALYZE consultation_requests"))
        explained = await connection.scalar(
            text(f"EXPLAIN (FORMAT JSON) {PAGE.format(where=where)}")
        )
    nodes = _nodes(explained[0]["Plan"])
    kinds = [node["Node Type"] for node in nodes]
    assert "Sort" not in kinds, kinds
    assert index in [node.get("Index Name") for node in nodes], nodes
