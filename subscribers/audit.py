"""The audit trail: one helper every write path of the subscribers app calls.

An actor is whoever caused the write: a signed-in user (or their Member), an API key, or a
plain label for the public pages and background jobs ("subscriber via unsubscribe link",
"system").
"""

from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from accounts.models import ApiKey, Member, User
from subscribers.models import AuditEntry

SYSTEM = "system"


def actor_fields(actor: Any) -> dict:
    """The AuditEntry columns naming `actor`."""
    if isinstance(actor, Member):
        actor = actor.user
    if isinstance(actor, User):
        return {"actor_user": actor, "actor_label": actor.email}
    if isinstance(actor, ApiKey):
        return {"actor_api_key": actor, "actor_label": f"API key {actor.name} ({actor.prefix}…)"[:200]}
    if isinstance(actor, str) and actor:
        return {"actor_label": actor[:200]}
    return {"actor_label": SYSTEM}


def actor_user(actor: Any) -> User | None:
    """The user behind `actor`, for columns such as Suppression.created_by."""
    if isinstance(actor, Member):
        return actor.user
    return actor if isinstance(actor, User) else None


def _jsonable(changes: dict) -> dict:
    # Dates and decimals become strings, the way they would in an API answer.
    import json

    return json.loads(json.dumps(changes, cls=DjangoJSONEncoder))


def audit_record(
    *,
    workspace_id: int,
    actor: Any,
    action: str,
    object_type: str,
    object_id: int | None = None,
    object_repr: str = "",
    subscriber_id: int | None = None,
    changes: dict | None = None,
) -> AuditEntry:
    """Write one entry; call it inside the same transaction as the change it describes."""
    return AuditEntry.objects.create(
        workspace_id=workspace_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=str(object_repr)[:300],
        subscriber_id=subscriber_id,
        changes=_jsonable(changes or {}),
        **actor_fields(actor),
    )


def diff(before: dict, after: dict) -> dict:
    """`{field: [old, new]}` for the fields whose value changed."""
    return {key: [before.get(key), value] for key, value in after.items() if before.get(key) != value}
