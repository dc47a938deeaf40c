"""The stable stand-in for an erased person's id.

``uuid5(namespace, "<secret>:<id>")``: the same person always gets the same
pseudonym, so counts, billing history and the links between rows still add up
after an erasure, while nobody without the secret can tell whose it was. The same
function recognises an erased person's token (the erasure is recorded under the
pseudonym, never under the id). Only the standard library, like ``core``.
"""

from __future__ import annotations

import uuid

PSEUDONYM_NAMESPACE = uuid.UUID("3f6b0c52-9d1e-5b7a-8c4f-2e9d7a1b6c30")
"""Fixed forever, like the secret."""


def pseudonym_for(person_id: uuid.UUID, secret: str) -> uuid.UUID:
    return uuid.uuid5(PSEUDONYM_NAMESPACE, f"{secret}:{person_id}")
