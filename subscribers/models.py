"""Subscribers, lists and their memberships, saved segments, suppressions and imports.

Every row carries its workspace. Addresses are stored lower-cased (a check constraint holds
it), so "unique per workspace, case-insensitive" is a plain unique constraint that set-based
upserts (`ON CONFLICT (workspace_id, email)`) can target.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from accounts.models import Workspace
from common.models import TimeStampedModel


class Subscriber(TimeStampedModel):
    """One address a workspace may mail, with what it knows of the person and their consent."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        BLOCKLISTED = "blocklisted", "Blocklisted"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="subscribers")
    email = models.CharField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    source = models.CharField(max_length=40, blank=True, help_text="How the address arrived: form, import, api, ...")
    # The consent record: when and how the person agreed, from where, and to what text.
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_method = models.CharField(max_length=40, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_text = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "email"], name="subscribers_subscriber_email_unique"),
            models.CheckConstraint(condition=Q(email=Lower("email")), name="subscribers_subscriber_email_lower"),
        ]
        indexes = [
            # The subscriber table pages by id within a workspace and status (keyset pagination).
            models.Index(fields=["workspace", "status", "-id"], name="subscribers_ws_status_id"),
            # The unfiltered subscriber table and the API's cursor: a workspace's rows by id, newest first.
            models.Index(fields=["workspace", "-id"], name="subscribers_ws_id"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_mailable(self) -> bool:
        return self.status == self.Status.ACTIVE


def new_public_token() -> str:
    """The unguessable part of a list's public subscribe URL."""
    return secrets.token_urlsafe(16)


DEFAULT_CONSENT_TEXT = (
    "I agree to receive this list's emails. I can unsubscribe at any time with the link in each email."
)


class MailingList(TimeStampedModel):
    """A list people subscribe to; double opt-in lists confirm each address by email first."""

    class OptIn(models.TextChoices):
        SINGLE = "single", "Single opt-in"
        DOUBLE = "double", "Double opt-in"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="lists")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    opt_in = models.CharField(max_length=6, choices=OptIn.choices, default=OptIn.SINGLE)
    # The public subscribe form lives at /subscribe/<public_token>/; ids are never exposed there.
    public_token = models.CharField(max_length=32, unique=True, default=new_public_token, editable=False)
    # What the person agrees to on the subscribe form; copied into their consent record.
    consent_text = models.TextField(default=DEFAULT_CONSENT_TEXT)

    class Meta:
        ordering = ["name"]
        verbose_name = "list"
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="subscribers_list_name_unique")]

    def __str__(self) -> str:
        return self.name


class ListMembership(TimeStampedModel):
    """A subscriber's place on a list, with its own status and the times it changed."""

    class Status(models.TextChoices):
        UNCONFIRMED = "unconfirmed", "Unconfirmed"
        CONFIRMED = "confirmed", "Confirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE, related_name="memberships")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="memberships")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONFIRMED)
    subscribed_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailing_list", "subscriber"], name="subscribers_membership_unique")
        ]
        indexes = [
            # Audience snapshots and list counts: the members of a list in a given status.
            models.Index(fields=["mailing_list", "status", "subscriber"], name="subscribers_membership_list"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} on {self.mailing_list_id} ({self.status})"


class Segment(TimeStampedModel):
    """Saved rules over subscriber fields, attributes, lists, status and activity.

    `rules` is `{"match": "all" | "any", "conditions": [{"field": ..., "op": ..., "value": ...}]}`;
    subscribers/segments.py compiles it to one ORM query.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=120)
    rules = models.JSONField(default=dict)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="subscribers_segment_name_unique")]

    def __str__(self) -> str:
        return self.name


class Suppression(models.Model):
    """An address, a whole domain, or the hash of an erased address the workspace must never mail."""

    class Kind(models.TextChoices):
        ADDRESS = "address", "Address"
        DOMAIN = "domain", "Domain"
        # An erased subscriber leaves only a salted hash, so a later import cannot re-add them.
        HASH = "hash", "Erased address (hash)"

    class Reason(models.TextChoices):
        MANUAL = "manual", "Added by hand"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Spam complaint"
        BLOCKLIST = "blocklist", "Blocklisted"
        ERASED = "erased", "Erased on request"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="suppressions")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ADDRESS)
    value = models.CharField(max_length=254, help_text="Lower-cased address, domain, or hex digest.")
    reason = models.CharField(max_length=14, choices=Reason.choices, default=Reason.MANUAL)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "kind", "value"], name="subscribers_suppression_unique"),
            models.CheckConstraint(condition=Q(value=Lower("value")), name="subscribers_suppression_value_lower"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class AuditEntry(models.Model):
    """Who changed what: one row per write to the workspace's audience, from any path.

    `actor_label` keeps a readable name for the actor even after the user or key is gone;
    `subscriber_id` is a plain column (not a foreign key) so the trail outlives a deleted
    subscriber; erasing one scrubs its entries instead (subscribers.services.subscriber_erase).
    """

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Updated"
        DELETE = "delete", "Deleted"
        SUBSCRIBE = "subscribe", "Subscribed"
        CONFIRM = "confirm", "Confirmed"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
        LIST_ADD = "list_add", "Added to list"
        LIST_REMOVE = "list_remove", "Removed from list"
        SUPPRESS = "suppress", "Suppressed"
        UNSUPPRESS = "unsuppress", "Suppression removed"
        EXPORT = "export", "Exported"
        ERASE = "erase", "Erased"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=12, choices=Action.choices)
    object_type = models.CharField(max_length=20)
    object_id = models.BigIntegerField(null=True, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    subscriber_id = models.BigIntegerField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [
            # The activity panel of a subscriber's page: their newest entries first.
            models.Index(fields=["workspace", "subscriber_id", "-id"], name="subscribers_audit_subscriber"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.get_action_display().lower()} {self.object_type} {self.object_repr}"
