"""Writes of the subscribers app: subscribers, lists, memberships, segments, suppressions,
subscribe and unsubscribe flows, erasure.

Every write is idempotent (conditional updates, unique keys), because links are clicked twice,
webhooks are delivered twice and tasks run twice; and every write leaves an audit entry
(subscribers/audit.py) in the same transaction.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from email_validator import EmailNotValidError, validate_email

from subscribers.audit import actor_user, audit_record, diff
from subscribers.models import AuditEntry, ListMembership, MailingList, Segment, Subscriber, Suppression
from subscribers.segments import SegmentRuleError, validate_rules

logger = logging.getLogger(__name__)

# Statuses an address never leaves by itself: only a person's own new consent (or an admin) may.
TERMINAL_STATUSES = frozenset(
    {
        Subscriber.Status.UNSUBSCRIBED,
        Subscriber.Status.BOUNCED,
        Subscriber.Status.COMPLAINED,
        Subscriber.Status.BLOCKLISTED,
    }
)
MAX_ATTRIBUTES_BYTES = 16_000
ERASED_MESSAGE = "This address was erased at the person's request and cannot be added again."


class ErasedAddressError(ValidationError):
    """The address belongs to a subscriber erased on request; it must not come back silently."""


class DuplicateSubscriberError(ValidationError):
    """The workspace already has a subscriber with this address."""


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
    """Suppress an address, a domain or an erasure hash; (row, created). Adding it twice is a no-op.

    `actor` may be a user, a member, an API key or a label (see subscribers/audit.py).
    """
    value = value.strip().lower()
    if kind not in Suppression.Kind.values:
        raise ValidationError(f"Kind must be one of {', '.join(Suppression.Kind.values)}.")
    if not value:
        raise ValidationError("Enter an address or a domain to suppress.")
    if kind == Suppression.Kind.ADDRESS and "@" not in value:
        raise ValidationError("An address to suppress needs an '@'; to suppress a whole domain choose Domain.")
    if kind == Suppression.Kind.DOMAIN:
        value = _normalize_domain(value)
    with transaction.atomic():
        suppression, created = Suppression.objects.get_or_create(
            workspace_id=workspace_id,
            kind=kind,
            value=value,
            defaults={"reason": reason, "note": note[:500], "created_by": actor_user(actor)},
        )
        if created:
            audit_record(
                workspace_id=workspace_id,
                actor=actor,
                action=AuditEntry.Action.SUPPRESS,
                object_type="suppression",
                object_id=suppression.pk,
                # An erasure hash says nothing to a reader; the kind is what matters.
                object_repr=str(suppression) if kind != Suppression.Kind.HASH else "erased address (hash)",
                changes={"kind": kind, "reason": reason},
            )
    return suppression, created


def suppression_remove(*, suppression: Suppression, actor: Any) -> None:
    """Lift a suppression: the address or domain may be mailed again (if otherwise active)."""
    with transaction.atomic():
        audit_record(
            workspace_id=suppression.workspace_id,
            actor=actor,
            action=AuditEntry.Action.UNSUPPRESS,
            object_type="suppression",
            object_id=suppression.pk,
            object_repr=str(suppression) if suppression.kind != Suppression.Kind.HASH else "erased address (hash)",
            changes={"kind": suppression.kind, "reason": suppression.reason},
        )
        suppression.delete()


def subscriber_unsubscribe(
    *,
    subscriber_id: int,
    workspace_id: int,
    list_ids: list[int] | None = None,
    actor: Any = None,
    at: datetime | None = None,
    method: str = "",
) -> bool:
    """Unsubscribe from the given lists, or from everything when `list_ids` is None.

    Returns whether anything changed. Safe to repeat: the second call finds nothing to change.
    `at` is when the person asked (an unsubscribe queued during an outage keeps its time).
    """
    now = at or timezone.now()
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
        if changed:
            audit_record(
                workspace_id=workspace_id,
                actor=actor,
                action=AuditEntry.Action.UNSUBSCRIBE,
                object_type="subscriber",
                object_id=subscriber_id,
                object_repr=f"subscriber #{subscriber_id}",
                subscriber_id=subscriber_id,
                changes={"lists": "all" if list_ids is None else list_ids, "method": method, "at": now},
            )
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
        if changed:
            subscriber = Subscriber.objects.filter(workspace_id=workspace_id, email=email).first()
            audit_record(
                workspace_id=workspace_id,
                actor=None,
                action=AuditEntry.Action.UPDATE,
                object_type="subscriber",
                object_id=subscriber.pk if subscriber else None,
                object_repr=email,
                subscriber_id=subscriber.pk if subscriber else None,
                changes={"status": [None, status], "reason": reason},
            )
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


# --- addresses -----------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """The address lower-cased, or ValidationError saying what is wrong with its syntax.

    Only the syntax is checked (email-validator, no DNS): a lookup per address would make
    imports and forms depend on resolvers that may be slow or down.
    """
    email = (email or "").strip()
    if not email:
        raise ValidationError("Enter an email address.")
    try:
        result = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"{email!r} is not a valid email address: {exc}") from None
    return result.normalized.lower()


def _normalize_domain(domain: str) -> str:
    domain = domain.strip().lower().removeprefix("@")
    if "@" in domain or "." not in domain or " " in domain or len(domain) > 253:
        raise ValidationError(f"{domain!r} is not a domain (example: example.com).")
    return domain


def is_erased(*, workspace_id: int, email: str) -> bool:
    """Whether this address belongs to a subscriber erased on request (only its hash remains)."""
    return Suppression.objects.filter(
        workspace_id=workspace_id,
        kind=Suppression.Kind.HASH,
        value=erasure_digest(workspace_id=workspace_id, email=email),
    ).exists()


def _refuse_erased(*, workspace_id: int, email: str) -> None:
    if is_erased(workspace_id=workspace_id, email=email):
        raise ErasedAddressError(ERASED_MESSAGE)


def _clean_attributes(attributes: Any) -> dict:
    import json

    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise ValidationError('Attributes must be an object of names and values, like {"plan": "pro"}.')
    if len(json.dumps(attributes)) > MAX_ATTRIBUTES_BYTES:
        raise ValidationError(f"Attributes may take at most {MAX_ATTRIBUTES_BYTES} bytes.")
    for key in attributes:
        if not isinstance(key, str) or not key.strip() or len(key) > 100:
            raise ValidationError("Each attribute needs a name of 1 to 100 characters.")
    return attributes


def _lists_of(workspace_id: int, list_ids) -> list[MailingList]:
    list_ids = {int(list_id) for list_id in list_ids or ()}
    lists = list(MailingList.objects.filter(workspace_id=workspace_id, pk__in=list_ids))
    if len(lists) != len(list_ids):
        missing = sorted(list_ids - {mailing_list.pk for mailing_list in lists})
        raise ValidationError(f"No list with id {', '.join(map(str, missing))} in this workspace.")
    return lists


def _snapshot(subscriber: Subscriber) -> dict:
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "attributes": subscriber.attributes,
        "status": subscriber.status,
    }


# --- subscribers ---------------------------------------------------------------------------


def subscriber_create(
    *,
    workspace_id: int,
    email: str,
    name: str = "",
    attributes: dict | None = None,
    list_ids=(),
    source: str = "dashboard",
    actor: Any = None,
) -> Subscriber:
    """A new subscriber, on the given lists (confirmed: someone with access vouches for them).

    Refuses an address already in the workspace, and one erased on request (ErasedAddressError).
    """
    email = normalize_email(email)
    attributes = _clean_attributes(attributes)
    _refuse_erased(workspace_id=workspace_id, email=email)
    lists = _lists_of(workspace_id, list_ids)
    try:
        with transaction.atomic():
            subscriber = Subscriber.objects.create(
                workspace_id=workspace_id,
                email=email,
                name=(name or "").strip()[:200],
                attributes=attributes,
                source=source,
            )
            audit_record(
                workspace_id=workspace_id,
                actor=actor,
                action=AuditEntry.Action.CREATE,
                object_type="subscriber",
                object_id=subscriber.pk,
                object_repr=email,
                subscriber_id=subscriber.pk,
                changes={"email": email, "name": subscriber.name, "attributes": attributes, "source": source},
            )
            for mailing_list in lists:
                membership_add(subscriber=subscriber, mailing_list=mailing_list, actor=actor)
    except IntegrityError:
        raise DuplicateSubscriberError(f"{email} is already a subscriber in this workspace.") from None
    return subscriber


def subscriber_upsert(
    *,
    workspace_id: int,
    email: str,
    name: str | None = None,
    attributes: dict | None = None,
    list_ids=(),
    source: str = "api",
    actor: Any = None,
) -> tuple[Subscriber, bool]:
    """Create the subscriber, or update the one with this address; (subscriber, created).

    An update merges `attributes` into the existing ones and never changes the status: an
    unsubscribed person stays unsubscribed however often a sync sends them again.
    """
    email = normalize_email(email)
    attributes = _clean_attributes(attributes) if attributes is not None else None
    _refuse_erased(workspace_id=workspace_id, email=email)
    lists = _lists_of(workspace_id, list_ids)
    with transaction.atomic():
        existing = Subscriber.objects.select_for_update().filter(workspace_id=workspace_id, email=email).first()
        if existing is None:
            try:
                with transaction.atomic():
                    subscriber = subscriber_create(
                        workspace_id=workspace_id,
                        email=email,
                        name=name or "",
                        attributes=attributes,
                        list_ids=[mailing_list.pk for mailing_list in lists],
                        source=source,
                        actor=actor,
                    )
                return subscriber, True
            except DuplicateSubscriberError:
                # Created by a concurrent request between our look and our insert: update it.
                existing = Subscriber.objects.select_for_update().filter(workspace_id=workspace_id, email=email).first()
                if existing is None:
                    raise
        merged = {**existing.attributes, **attributes} if attributes is not None else None
        subscriber = subscriber_update(subscriber=existing, actor=actor, name=name, attributes=merged)
        for mailing_list in lists:
            membership_add(subscriber=subscriber, mailing_list=mailing_list, actor=actor)
    return subscriber, False


def subscriber_update(
    *,
    subscriber: Subscriber,
    actor: Any,
    email: str | None = None,
    name: str | None = None,
    attributes: dict | None = None,
    status: str | None = None,
    may_reactivate: bool = False,
) -> Subscriber:
    """Change the given fields (None leaves one as it is).

    Moving an unsubscribed, bounced, complained or blocklisted subscriber back to active takes
    `may_reactivate` (owners and admins): people's choices are not undone by a teammate's click.
    """
    before = _snapshot(subscriber)
    if email is not None:
        email = normalize_email(email)
        if email != subscriber.email:
            _refuse_erased(workspace_id=subscriber.workspace_id, email=email)
            if Subscriber.objects.filter(workspace_id=subscriber.workspace_id, email=email).exists():
                raise DuplicateSubscriberError(f"{email} is already a subscriber in this workspace.")
        subscriber.email = email
    if name is not None:
        subscriber.name = name.strip()[:200]
    if attributes is not None:
        subscriber.attributes = _clean_attributes(attributes)
    if status is not None and status != subscriber.status:
        if status not in Subscriber.Status.values:
            raise ValidationError(f"Status must be one of {', '.join(Subscriber.Status.values)}.")
        if subscriber.status in TERMINAL_STATUSES and status == Subscriber.Status.ACTIVE and not may_reactivate:
            raise ValidationError(
                f"This subscriber is {subscriber.get_status_display().lower()}; only an owner or admin can make them "
                "active again, and only with the person's consent."
            )
        subscriber.status = status
        subscriber.status_changed_at = timezone.now()
    changes = diff(before, _snapshot(subscriber))
    if not changes:
        return subscriber
    try:
        with transaction.atomic():
            subscriber.save(update_fields=["email", "name", "attributes", "status", "status_changed_at", "updated_at"])
            audit_record(
                workspace_id=subscriber.workspace_id,
                actor=actor,
                action=AuditEntry.Action.UPDATE,
                object_type="subscriber",
                object_id=subscriber.pk,
                object_repr=subscriber.email,
                subscriber_id=subscriber.pk,
                changes=changes,
            )
    except IntegrityError:
        raise DuplicateSubscriberError(f"{subscriber.email} is already a subscriber in this workspace.") from None
    return subscriber


def subscriber_delete(*, subscriber: Subscriber, actor: Any) -> None:
    """Delete the subscriber and their memberships. The address may be added again later
    (to make sure it never is, erase instead)."""
    with transaction.atomic():
        audit_record(
            workspace_id=subscriber.workspace_id,
            actor=actor,
            action=AuditEntry.Action.DELETE,
            object_type="subscriber",
            object_id=subscriber.pk,
            object_repr=subscriber.email,
            subscriber_id=subscriber.pk,
        )
        subscriber.delete()


def subscriber_erase(*, subscriber: Subscriber, actor: Any) -> None:
    """Erase everything held about the person, keeping only the salted hash of their address
    in the suppression list, so no import, form or API call adds them back without notice.

    Their audit entries stay (who did what, when) with the personal details scrubbed; address
    suppressions of the same address go (the hash replaces them); stored API answers that
    quoted the address go too.
    """
    from accounts.models import IdempotencyRecord

    workspace_id, subscriber_id, email = subscriber.workspace_id, subscriber.pk, subscriber.email
    with transaction.atomic():
        suppression_add(
            workspace_id=workspace_id,
            value=erasure_digest(workspace_id=workspace_id, email=email),
            kind=Suppression.Kind.HASH,
            reason=Suppression.Reason.ERASED,
            actor=actor,
        )
        address_rows = Suppression.objects.filter(workspace_id=workspace_id, kind=Suppression.Kind.ADDRESS, value=email)
        AuditEntry.objects.filter(
            workspace_id=workspace_id, object_type="suppression", object_id__in=address_rows.values("pk")
        ).update(object_repr="erased address", changes={})
        address_rows.delete()
        AuditEntry.objects.filter(workspace_id=workspace_id, subscriber_id=subscriber_id).update(
            object_repr=f"erased subscriber #{subscriber_id}", changes={}
        )
        IdempotencyRecord.objects.filter(workspace_id=workspace_id).alias(
            quotes_address=RawSQL("position(%s::bytea in response_body)", [email.encode()])
        ).filter(quotes_address__gt=0).delete()
        subscriber.delete()
        audit_record(
            workspace_id=workspace_id,
            actor=actor,
            action=AuditEntry.Action.ERASE,
            object_type="subscriber",
            object_id=subscriber_id,
            object_repr=f"erased subscriber #{subscriber_id}",
            subscriber_id=subscriber_id,
        )


BULK_ACTIONS = {
    "add_to_list": "Add to list",
    "remove_from_list": "Remove from list",
    "unsubscribe": "Unsubscribe",
    "delete": "Delete",
}


def subscribers_bulk(*, workspace_id: int, subscriber_ids, action: str, actor: Any, list_id: int | None = None) -> int:
    """Apply one action to many subscribers of the workspace, all or nothing; returns how many changed."""
    if action not in BULK_ACTIONS:
        raise ValidationError(f"Unknown action {action!r}.")
    mailing_list = None
    if action in ("add_to_list", "remove_from_list"):
        if not list_id:
            raise ValidationError("Choose a list.")
        mailing_list = _lists_of(workspace_id, [list_id])[0]
    subscribers = list(Subscriber.objects.filter(workspace_id=workspace_id, pk__in=list(subscriber_ids)))
    if not subscribers:
        raise ValidationError("Select at least one subscriber.")
    changed = 0
    with transaction.atomic():
        for subscriber in subscribers:
            if action == "add_to_list":
                changed += membership_add(subscriber=subscriber, mailing_list=mailing_list, actor=actor)[1]
            elif action == "remove_from_list":
                changed += membership_remove(subscriber=subscriber, mailing_list=mailing_list, actor=actor)
            elif action == "unsubscribe":
                changed += subscriber_unsubscribe(
                    subscriber_id=subscriber.pk, workspace_id=workspace_id, actor=actor, method="bulk action"
                )
            else:
                subscriber_delete(subscriber=subscriber, actor=actor)
                changed += 1
    return changed


# --- memberships ---------------------------------------------------------------------------


def membership_add(
    *, subscriber: Subscriber, mailing_list: MailingList, actor: Any, status: str = ListMembership.Status.CONFIRMED
) -> tuple[ListMembership, bool]:
    """Put the subscriber on the list; (membership, changed). Someone who left the list stays
    off it: only their own consent (the subscribe form, preferences) brings them back."""
    if subscriber.workspace_id != mailing_list.workspace_id:
        raise ValidationError("The subscriber and the list belong to different workspaces.")
    now = timezone.now()
    with transaction.atomic():
        membership, created = ListMembership.objects.get_or_create(
            mailing_list=mailing_list,
            subscriber=subscriber,
            defaults={
                "workspace_id": subscriber.workspace_id,
                "status": status,
                "confirmed_at": now if status == ListMembership.Status.CONFIRMED else None,
            },
        )
        changed = created
        if not created and membership.status == ListMembership.Status.UNCONFIRMED and status == "confirmed":
            membership.status, membership.confirmed_at = status, now
            membership.save(update_fields=["status", "confirmed_at", "updated_at"])
            changed = True
        if changed:
            audit_record(
                workspace_id=subscriber.workspace_id,
                actor=actor,
                action=AuditEntry.Action.LIST_ADD,
                object_type="membership",
                object_id=membership.pk,
                object_repr=f"{subscriber.email} on {mailing_list.name}",
                subscriber_id=subscriber.pk,
                changes={"list": mailing_list.name, "list_id": mailing_list.pk, "status": membership.status},
            )
    return membership, changed


def membership_remove(*, subscriber: Subscriber, mailing_list: MailingList, actor: Any) -> bool:
    """Take the subscriber off the list (the membership row goes); whether they were on it."""
    with transaction.atomic():
        deleted, _ = ListMembership.objects.filter(mailing_list=mailing_list, subscriber=subscriber).delete()
        if deleted:
            audit_record(
                workspace_id=subscriber.workspace_id,
                actor=actor,
                action=AuditEntry.Action.LIST_REMOVE,
                object_type="membership",
                object_repr=f"{subscriber.email} from {mailing_list.name}",
                subscriber_id=subscriber.pk,
                changes={"list": mailing_list.name, "list_id": mailing_list.pk},
            )
    return bool(deleted)


# --- lists ---------------------------------------------------------------------------------


def _save_named(
    instance: MailingList | Segment,
    *,
    object_type: str,
    actor: Any,
    action: str,
    changes: dict,
    update_fields: list[str] | None = None,
) -> None:
    """Save a named list or segment and its audit entry together; a name already taken is refused."""
    try:
        with transaction.atomic():
            instance.save(update_fields=update_fields)
            audit_record(
                workspace_id=instance.workspace_id,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=instance.pk,
                object_repr=instance.name,
                changes=changes,
            )
    except IntegrityError:
        raise ValidationError(f"There is already a {object_type} named {instance.name!r}.") from None


def _delete_named(
    instance: MailingList | Segment, *, object_type: str, actor: Any, changes: dict | None = None
) -> None:
    """Delete a list or segment together with the audit entry that says so."""
    with transaction.atomic():
        audit_record(
            workspace_id=instance.workspace_id,
            actor=actor,
            action=AuditEntry.Action.DELETE,
            object_type=object_type,
            object_id=instance.pk,
            object_repr=instance.name,
            changes=changes,
        )
        instance.delete()


def _list_fields(*, name: str, opt_in: str, description: str, consent_text: str) -> dict:
    name = (name or "").strip()
    if not name:
        raise ValidationError("A list needs a name.")
    if len(name) > 120:
        raise ValidationError("A list name may be at most 120 characters.")
    if opt_in not in MailingList.OptIn.values:
        raise ValidationError("Opt-in must be single or double.")
    consent_text = (consent_text or "").strip()
    if not consent_text:
        raise ValidationError("Say what people agree to when they subscribe (the consent text).")
    return {"name": name, "opt_in": opt_in, "description": (description or "").strip(), "consent_text": consent_text}


def list_create(
    *,
    workspace_id: int,
    name: str,
    actor: Any,
    opt_in: str = MailingList.OptIn.SINGLE,
    description: str = "",
    consent_text: str | None = None,
) -> MailingList:
    from subscribers.models import DEFAULT_CONSENT_TEXT

    fields = _list_fields(
        name=name, opt_in=opt_in, description=description, consent_text=consent_text or DEFAULT_CONSENT_TEXT
    )
    mailing_list = MailingList(workspace_id=workspace_id, **fields)
    _save_named(mailing_list, object_type="list", actor=actor, action=AuditEntry.Action.CREATE, changes=fields)
    return mailing_list


def list_update(
    *,
    mailing_list: MailingList,
    actor: Any,
    name: str | None = None,
    opt_in: str | None = None,
    description: str | None = None,
    consent_text: str | None = None,
) -> MailingList:
    before = {
        "name": mailing_list.name,
        "opt_in": mailing_list.opt_in,
        "description": mailing_list.description,
        "consent_text": mailing_list.consent_text,
    }
    fields = _list_fields(
        name=before["name"] if name is None else name,
        opt_in=before["opt_in"] if opt_in is None else opt_in,
        description=before["description"] if description is None else description,
        consent_text=before["consent_text"] if consent_text is None else consent_text,
    )
    changes = diff(before, fields)
    if not changes:
        return mailing_list
    for field, value in fields.items():
        setattr(mailing_list, field, value)
    _save_named(
        mailing_list,
        object_type="list",
        actor=actor,
        action=AuditEntry.Action.UPDATE,
        changes=changes,
        update_fields=[*fields, "updated_at"],
    )
    return mailing_list


def list_delete(*, mailing_list: MailingList, actor: Any) -> None:
    """Delete the list and its memberships; the subscribers themselves stay."""
    _delete_named(mailing_list, object_type="list", actor=actor, changes={"members": mailing_list.memberships.count()})


# --- segments ------------------------------------------------------------------------------


def _segment_fields(*, workspace_id: int, name: str, rules: Any) -> dict:
    name = (name or "").strip()
    if not name:
        raise ValidationError("A segment needs a name.")
    if len(name) > 120:
        raise ValidationError("A segment name may be at most 120 characters.")
    try:
        rules = validate_rules(rules)
    except SegmentRuleError as exc:
        raise ValidationError(str(exc)) from None
    list_ids = [int(c["value"]) for c in rules["conditions"] if c.get("field") == "list"]
    if list_ids:
        _lists_of(workspace_id, list_ids)
    return {"name": name, "rules": rules}


def segment_create(*, workspace_id: int, name: str, rules: Any, actor: Any) -> Segment:
    fields = _segment_fields(workspace_id=workspace_id, name=name, rules=rules)
    segment = Segment(workspace_id=workspace_id, **fields)
    _save_named(segment, object_type="segment", actor=actor, action=AuditEntry.Action.CREATE, changes=fields)
    return segment


def segment_update(*, segment: Segment, name: str, rules: Any, actor: Any) -> Segment:
    fields = _segment_fields(workspace_id=segment.workspace_id, name=name, rules=rules)
    changes = diff({"name": segment.name, "rules": segment.rules}, fields)
    if not changes:
        return segment
    segment.name, segment.rules = fields["name"], fields["rules"]
    _save_named(
        segment,
        object_type="segment",
        actor=actor,
        action=AuditEntry.Action.UPDATE,
        changes=changes,
        update_fields=["name", "rules", "updated_at"],
    )
    return segment


def segment_delete(*, segment: Segment, actor: Any) -> None:
    _delete_named(segment, object_type="segment", actor=actor)


# --- public subscribe form and double opt-in -----------------------------------------------


class SubscribeOutcome:
    SUBSCRIBED = "subscribed"
    CONFIRMATION_SENT = "confirmation_sent"
    # Suppressed, erased, bounced, complained or blocklisted: nothing happens.
    REFUSED = "refused"


@dataclass(frozen=True)
class SubscribeResult:
    outcome: str
    # The confirmation email could not be sent at once: "retrying" (a task keeps trying) or "failed".
    email_problem: str = ""


def subscription_request(
    *, mailing_list: MailingList, email: str, name: str = "", ip: str | None = None
) -> SubscribeResult:
    """Someone filled in the list's public form.

    Single opt-in: they are on the list at once, with their consent recorded. Double opt-in
    (and anyone who had unsubscribed, whatever the list): an email with a signed link asks
    them to confirm first. Raises ValidationError for a malformed address.
    """
    email = normalize_email(email)
    workspace_id = mailing_list.workspace_id
    from subscribers.selectors import is_suppressed

    if is_suppressed(workspace_id=workspace_id, email=email):
        return SubscribeResult(SubscribeOutcome.REFUSED)
    now = timezone.now()
    actor = "subscriber via the subscribe form"
    with transaction.atomic():
        subscriber, created = Subscriber.objects.get_or_create(
            workspace_id=workspace_id, email=email, defaults={"name": (name or "").strip()[:200], "source": "form"}
        )
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status in (
            Subscriber.Status.BOUNCED,
            Subscriber.Status.COMPLAINED,
            Subscriber.Status.BLOCKLISTED,
        ):
            return SubscribeResult(SubscribeOutcome.REFUSED)
        if created:
            audit_record(
                workspace_id=workspace_id,
                actor=actor,
                action=AuditEntry.Action.CREATE,
                object_type="subscriber",
                object_id=subscriber.pk,
                object_repr=email,
                subscriber_id=subscriber.pk,
                changes={"email": email, "name": subscriber.name, "source": "form"},
            )
        membership = ListMembership.objects.filter(mailing_list=mailing_list, subscriber=subscriber).first()
        needs_confirmation = (
            mailing_list.opt_in == MailingList.OptIn.DOUBLE or subscriber.status == Subscriber.Status.UNSUBSCRIBED
        )
        if needs_confirmation:
            already = (
                membership is not None
                and membership.status == ListMembership.Status.CONFIRMED
                and subscriber.status == Subscriber.Status.ACTIVE
            )
            if already:
                # Nothing to confirm; the answer looks the same so the form reveals no membership.
                return SubscribeResult(SubscribeOutcome.CONFIRMATION_SENT)
            if membership is None:
                membership = ListMembership.objects.create(
                    workspace_id=workspace_id,
                    mailing_list=mailing_list,
                    subscriber=subscriber,
                    status=ListMembership.Status.UNCONFIRMED,
                )
            audit_record(
                workspace_id=workspace_id,
                actor=actor,
                action=AuditEntry.Action.SUBSCRIBE,
                object_type="membership",
                object_id=membership.pk,
                object_repr=f"{email} on {mailing_list.name}",
                subscriber_id=subscriber.pk,
                changes={"list": mailing_list.name, "ip": ip, "awaiting_confirmation": True},
            )
        else:
            if membership is None:
                membership = ListMembership(workspace_id=workspace_id, mailing_list=mailing_list, subscriber=subscriber)
            if membership.pk is None or membership.status != ListMembership.Status.CONFIRMED:
                membership.status, membership.confirmed_at, membership.unsubscribed_at = "confirmed", now, None
                membership.save()
                _record_consent(subscriber, mailing_list, method="single opt-in form", ip=ip, at=now)
                audit_record(
                    workspace_id=workspace_id,
                    actor=actor,
                    action=AuditEntry.Action.SUBSCRIBE,
                    object_type="membership",
                    object_id=membership.pk,
                    object_repr=f"{email} on {mailing_list.name}",
                    subscriber_id=subscriber.pk,
                    changes={"list": mailing_list.name, "ip": ip, "consent_text": mailing_list.consent_text},
                )
            return SubscribeResult(SubscribeOutcome.SUBSCRIBED)
    # Sent after the commit, so the link never names a row that was rolled back. Sent from the
    # request so the person usually has it before they look; if the mail server is down, a task
    # keeps trying rather than losing the subscriber.
    try:
        confirmation_send(subscriber=subscriber, mailing_list=mailing_list)
    except OSError:
        logger.warning("Confirmation email to subscriber %s failed; a task will retry", subscriber.pk, exc_info=True)
        from subscribers.tasks import send_confirmation

        try:
            send_confirmation.delay(subscriber.pk, mailing_list.pk)
        except Exception:  # the broker is down too: the person is told to try again
            logger.exception("Could not queue the confirmation email to subscriber %s", subscriber.pk)
            return SubscribeResult(SubscribeOutcome.CONFIRMATION_SENT, email_problem="failed")
        return SubscribeResult(SubscribeOutcome.CONFIRMATION_SENT, email_problem="retrying")
    return SubscribeResult(SubscribeOutcome.CONFIRMATION_SENT)


def _record_consent(subscriber: Subscriber, mailing_list: MailingList, *, method: str, ip: str | None, at) -> None:
    subscriber.consent_at, subscriber.consent_method = at, method
    subscriber.consent_ip, subscriber.consent_text = ip, mailing_list.consent_text
    subscriber.save(update_fields=["consent_at", "consent_method", "consent_ip", "consent_text", "updated_at"])


def confirmation_send(*, subscriber: Subscriber, mailing_list: MailingList) -> None:
    """The double opt-in email: one signed link that confirms this address for this list."""
    from subscribers.tokens import make_confirm_token

    link = settings.SITE_URL + reverse(
        "subscription_confirm", args=[make_confirm_token(subscriber_id=subscriber.pk, list_id=mailing_list.pk)]
    )
    EmailMessage(
        f"Confirm your subscription to {mailing_list.name}",
        f"Someone (hopefully you) asked to subscribe {subscriber.email} to {mailing_list.name}.\n\n"
        f"To confirm, open this link within 7 days:\n{link}\n\n"
        f"By confirming you agree to: {mailing_list.consent_text}\n\n"
        "If it was not you, ignore this message: you will not be subscribed.",
        to=[subscriber.email],
    ).send()


def subscription_confirm(*, subscriber_id: int, list_id: int, ip: str | None = None) -> ListMembership | None:
    """The person opened their confirmation link: they are on the list, consent recorded.

    None when the subscriber or list no longer exists or the address may not be mailed.
    Confirming twice changes nothing the second time.
    """
    from subscribers.selectors import is_suppressed

    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None:
            return None
        mailing_list = MailingList.objects.filter(pk=list_id, workspace_id=subscriber.workspace_id).first()
        if mailing_list is None or subscriber.status in (
            Subscriber.Status.BOUNCED,
            Subscriber.Status.COMPLAINED,
            Subscriber.Status.BLOCKLISTED,
        ):
            return None
        if is_suppressed(workspace_id=subscriber.workspace_id, email=subscriber.email):
            return None
        membership, _ = ListMembership.objects.get_or_create(
            mailing_list=mailing_list,
            subscriber=subscriber,
            defaults={"workspace_id": subscriber.workspace_id, "status": ListMembership.Status.UNCONFIRMED},
        )
        if membership.status == ListMembership.Status.CONFIRMED and subscriber.status == Subscriber.Status.ACTIVE:
            return membership
        membership.status, membership.confirmed_at, membership.unsubscribed_at = "confirmed", now, None
        membership.save(update_fields=["status", "confirmed_at", "unsubscribed_at", "updated_at"])
        changes = {"list": mailing_list.name, "ip": ip, "consent_text": mailing_list.consent_text}
        if subscriber.status != Subscriber.Status.ACTIVE:
            # Their own confirmed consent is the one thing that may bring them back.
            changes["status"] = [subscriber.status, Subscriber.Status.ACTIVE]
            subscriber.status, subscriber.status_changed_at = Subscriber.Status.ACTIVE, now
            subscriber.save(update_fields=["status", "status_changed_at", "updated_at"])
        _record_consent(subscriber, mailing_list, method="double opt-in (confirmed by email)", ip=ip, at=now)
        audit_record(
            workspace_id=subscriber.workspace_id,
            actor="subscriber via the confirmation link",
            action=AuditEntry.Action.CONFIRM,
            object_type="membership",
            object_id=membership.pk,
            object_repr=f"{subscriber.email} on {mailing_list.name}",
            subscriber_id=subscriber.pk,
            changes=changes,
        )
    return membership


# --- unsubscribe links and preferences -----------------------------------------------------


def unsubscribe_request(
    *,
    workspace_id: int,
    subscriber_id: int,
    campaign_id: int | None = None,
    list_ids: list[int] | None = None,
    method: str,
    ip: str | None = None,
) -> str:
    """The person asked to unsubscribe (link, one-click POST, preferences): never lost.

    Applied at once when the database takes the write ("applied"); when it does not (down,
    failing over, read-only), queued in Redis ("queued") or, with Redis down too, appended to
    the local spool ("spooled"), and applied by `subscribers.apply_queued_unsubscribes`.
    """
    from subscribers import unsubscribe_queue

    entry = {
        "workspace_id": workspace_id,
        "subscriber_id": subscriber_id,
        "campaign_id": campaign_id,
        "list_ids": list_ids,
        "method": method,
        "ip": ip,
        "at": timezone.now().isoformat(),
    }
    try:
        unsubscribe_apply(entry=entry)
        return "applied"
    except DatabaseError:
        logger.warning("Database unavailable for an unsubscribe; queueing it", exc_info=True)
        return unsubscribe_queue.enqueue(entry)


def unsubscribe_apply(*, entry: dict) -> bool:
    """Apply one unsubscribe request (fresh or queued); whether anything changed."""
    at = datetime.fromisoformat(entry["at"]) if entry.get("at") else None
    method = entry.get("method") or "link"
    detail = method + (f", campaign {entry['campaign_id']}" if entry.get("campaign_id") else "")
    return subscriber_unsubscribe(
        subscriber_id=int(entry["subscriber_id"]),
        workspace_id=int(entry["workspace_id"]),
        list_ids=[int(i) for i in entry["list_ids"]] if entry.get("list_ids") is not None else None,
        actor=f"subscriber via {method}",
        at=at,
        method=detail,
    )


def preferences_update(*, subscriber: Subscriber, keep_list_ids, ip: str | None = None) -> None:
    """The preferences page: stay on the ticked lists, leave the others.

    Ticking a list the person had left puts them back on it: their own choice, recorded as consent.
    """
    keep = {int(list_id) for list_id in keep_list_ids}
    memberships = list(
        ListMembership.objects.filter(subscriber=subscriber)
        .select_related("mailing_list")
        .order_by("mailing_list__name")
    )
    leave = [m.mailing_list_id for m in memberships if m.mailing_list_id not in keep and m.status != "unsubscribed"]
    rejoin = [m for m in memberships if m.mailing_list_id in keep and m.status == "unsubscribed"]
    now = timezone.now()
    with transaction.atomic():
        if leave:
            subscriber_unsubscribe(
                subscriber_id=subscriber.pk,
                workspace_id=subscriber.workspace_id,
                list_ids=leave,
                actor="subscriber via preferences",
                method="preferences page",
            )
        for membership in rejoin:
            if subscriber.status != Subscriber.Status.ACTIVE:
                break
            membership.status, membership.confirmed_at, membership.unsubscribed_at = "confirmed", now, None
            membership.save(update_fields=["status", "confirmed_at", "unsubscribed_at", "updated_at"])
            _record_consent(subscriber, membership.mailing_list, method="preferences page", ip=ip, at=now)
            audit_record(
                workspace_id=subscriber.workspace_id,
                actor="subscriber via preferences",
                action=AuditEntry.Action.SUBSCRIBE,
                object_type="membership",
                object_id=membership.pk,
                object_repr=f"{subscriber.email} on {membership.mailing_list.name}",
                subscriber_id=subscriber.pk,
                changes={"list": membership.mailing_list.name, "ip": ip},
            )
