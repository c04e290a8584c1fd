"""Writes of the subscribers app: status changes, unsubscribes, suppressions.

Every write is idempotent (conditional updates, unique keys), because links are clicked twice,
webhooks are delivered twice and tasks run twice.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from subscribers.models import ListMembership, Subscriber, Suppression

# Statuses an address never leaves by itself: only a person's own new consent (or an admin) may.
TERMINAL_STATUSES = frozenset(
    {
        Subscriber.Status.UNSUBSCRIBED,
        Subscriber.Status.BOUNCED,
        Subscriber.Status.COMPLAINED,
        Subscriber.Status.BLOCKLISTED,
    }
)


def erasure_digest(*, workspace_id: int, email: str) -> str:
    """The salted hash an erased address leaves behind in the suppression list."""
    return salted_hmac(
        "herald.subscribers.erasure", f"{workspace_id}:{email.strip().lower()}", algorithm="sha256"
    ).hexdigest()


def suppression_add(
    *,
    workspace_id: int,
    value: str,
    kind: str = Suppression.Kind.ADDRESS,
    reason: str = Suppression.Reason.MANUAL,
    note: str = "",
    actor=None,
) -> tuple[Suppression, bool]:
    """Suppress an address, a domain or an erasure hash; (row, created). Adding it twice is a no-op."""
    return Suppression.objects.get_or_create(
        workspace_id=workspace_id,
        kind=kind,
        value=value.strip().lower(),
        defaults={"reason": reason, "note": note[:500], "created_by": actor},
    )


def subscriber_unsubscribe(*, subscriber_id: int, workspace_id: int, list_ids: list[int] | None = None) -> bool:
    """Unsubscribe from the given lists, or from everything when `list_ids` is None.

    Returns whether anything changed. Safe to repeat: the second call finds nothing to change.
    """
    now = timezone.now()
    with transaction.atomic():
        memberships = ListMembership.objects.filter(subscriber_id=subscriber_id, workspace_id=workspace_id).exclude(
            status=ListMembership.Status.UNSUBSCRIBED
        )
        if list_ids is not None:
            memberships = memberships.filter(mailing_list_id__in=list_ids)
        changed = memberships.update(status=ListMembership.Status.UNSUBSCRIBED, unsubscribed_at=now, updated_at=now)
        if list_ids is None:
            changed += Subscriber.objects.filter(
                pk=subscriber_id, workspace_id=workspace_id, status=Subscriber.Status.ACTIVE
            ).update(status=Subscriber.Status.UNSUBSCRIBED, status_changed_at=now, updated_at=now)
    return bool(changed)


def _mark_undeliverable(*, workspace_id: int, email: str, status: str, reason: str, note: str) -> bool:
    email = email.strip().lower()
    now = timezone.now()
    with transaction.atomic():
        changed = (
            Subscriber.objects.filter(workspace_id=workspace_id, email=email)
            .exclude(status__in=[status, Subscriber.Status.BLOCKLISTED])
            .update(status=status, status_changed_at=now, updated_at=now)
        )
        suppression_add(workspace_id=workspace_id, value=email, reason=reason, note=note)
    return bool(changed)


def subscriber_record_hard_bounce(*, workspace_id: int, email: str, detail: str = "") -> bool:
    """A relay or a DSN said the address does not exist: mark it bounced and suppress it."""
    return _mark_undeliverable(
        workspace_id=workspace_id,
        email=email,
        status=Subscriber.Status.BOUNCED,
        reason=Suppression.Reason.HARD_BOUNCE,
        note=detail,
    )


def subscriber_record_complaint(*, workspace_id: int, email: str, detail: str = "") -> bool:
    """The person marked a message as spam: mark them complained and suppress the address."""
    return _mark_undeliverable(
        workspace_id=workspace_id,
        email=email,
        status=Subscriber.Status.COMPLAINED,
        reason=Suppression.Reason.COMPLAINT,
        note=detail,
    )
