"""Who the audit trail names for a change made through the API."""

from __future__ import annotations

from api.auth import Principal
from core.vocabulary import AuditActorKind
from db.audit import Actor


def actor_of(principal: Principal) -> Actor:
    """An operator acts as one even on their own records; anyone else allowed to change
    catalogue data is the consultant of it."""
    kind = AuditActorKind.OPERATOR if principal.is_operator else AuditActorKind.CONSULTANT
    return Actor(kind=kind, user_id=principal.user_id)
