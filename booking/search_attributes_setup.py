"""Registers the custom search attributes the workflows set (``booking setup``).

Idempotent: attributes that already exist with the right type are left alone, so
it runs at every deployment. One that exists with another type is an error a
person has to resolve (Temporal cannot change an attribute's type in place).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

logger = logging.getLogger(__name__)


class SearchAttributeConflictError(RuntimeError):
    """A search attribute exists in the namespace with a different type."""


async def register_search_attributes(
    client: Client,
    namespace: str,
    keys: Iterable[SearchAttributeKey[Any]] = ALL_SEARCH_ATTRIBUTES,
) -> list[str]:
    """Add the missing attributes to ``namespace``; returns the names added."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    existing: dict[str, int] = {**listed.system_attributes, **listed.custom_attributes}
    missing: dict[str, IndexedValueType.ValueType] = {}
    for key in keys:
        wanted = IndexedValueType.ValueType(int(key.indexed_value_type))
        current = existing.get(key.name)
        if current is None:
            missing[key.name] = wanted
        elif current != wanted:
            raise SearchAttributeConflictError(
                f"search attribute {key.name} exists in namespace {namespace!r} as "
                f"{IndexedValueType.Name(IndexedValueType.ValueType(current))}, "
                f"expected {IndexedValueType.Name(wanted)}"
            )
    if not missing:
        logger.info("search attributes already registered in namespace %s", namespace)
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    except RPCError as error:
        # Another process registering at the same moment is as good as success.
        if error.status != RPCStatusCode.ALREADY_EXISTS and "already exists" not in str(error):
            raise
    names = sorted(missing)
    logger.info("registered search attributes %s in namespace %s", ", ".join(names), namespace)
    return names
