"""Subscribers, lists and their memberships, saved segments, suppressions and imports.

Every row carries its workspace. Addresses are stored lower-cased (a check constraint holds
it), so "unique per workspace, case-insensitive" is a plain unique constraint that set-based
upserts (`ON CONFLICT (workspace_id, email)`) can target.
"""

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
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_mailable(self) -> bool:
        return self.status == self.Status.ACTIVE


class MailingList(TimeStampedModel):
    """A list people subscribe to; double opt-in lists confirm each address by email first."""

    class OptIn(models.TextChoices):
        SINGLE = "single", "Single opt-in"
        DOUBLE = "double", "Double opt-in"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="lists")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    opt_in = models.CharField(max_length=6, choices=OptIn.choices, default=OptIn.SINGLE)

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


class Import(TimeStampedModel):
    """A CSV file of addresses being brought into a workspace, with its mapping, progress and counts.

    The file is processed in two resumable phases (subscribers/imports.py): rows are read,
    validated and copied into a staging table chunk by chunk (`byte_offset` is the checkpoint),
    then written into subscribers bucket by bucket (`buckets_done`). Each checkpoint is saved in
    the transaction that did the work, so a worker that dies resumes without doubling anything.
    Counts always add up: total = inserted + updated + unchanged + rejected + duplicates +
    suppressed_skipped.
    """

    class Mode(models.TextChoices):
        ADD = "add", "Add new subscribers"
        UPSERT = "upsert", "Add new and update existing"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe these addresses"
        BLOCKLIST = "blocklist", "Blocklist these addresses"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting for column mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Phase(models.TextChoices):
        STAGING = "staging", "Reading and validating rows"
        WRITING = "writing", "Writing subscribers"
        DONE = "done", "Done"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="imports")
    mailing_list = models.ForeignKey(
        MailingList, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.ADD)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED)
    phase = models.CharField(max_length=8, choices=Phase.choices, default=Phase.STAGING)
    # An API client's Idempotency-Key: a retried upload returns the import it already started.
    idempotency_key = models.CharField(max_length=255, blank=True)

    # The stored file (UTF-8, whatever it was uploaded in) and what the upload learnt of it.
    file = models.FileField(upload_to="imports/", max_length=300)
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    encoding = models.CharField(max_length=40, help_text="The encoding the file was uploaded in.")
    delimiter = models.CharField(max_length=1, default=",")
    lines_estimate = models.PositiveIntegerField(default=0, help_text="Line breaks in the file, before parsing.")
    header_bytes = models.PositiveIntegerField(default=0, help_text="Length of the first row, where data starts.")
    columns = models.JSONField(default=list, help_text="The first row's cells.")
    preview = models.JSONField(default=list, help_text="The first rows after it.")
    has_header = models.BooleanField(default=True)
    # {"email": column, "name": column or null, "attributes": [[key, column], ...]}
    mapping = models.JSONField(default=dict, blank=True)

    # Progress checkpoints (see the class docstring).
    attempt = models.PositiveIntegerField(default=0, help_text="Incremented by each worker that claims it.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    byte_offset = models.BigIntegerField(default=0)
    chunks_staged = models.PositiveIntegerField(default=0)
    records_read = models.PositiveIntegerField(default=0, help_text="Records read so far, blank lines included.")
    bucket_count = models.PositiveIntegerField(default=0)
    buckets_done = models.JSONField(default=list, blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    error_report_bytes = models.BigIntegerField(default=0)

    total_rows = models.PositiveIntegerField(default=0)
    inserted = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    suppressed_skipped = models.PositiveIntegerField(default=0)

    error_report = models.FileField(upload_to="imports/", max_length=300, blank=True)
    error_message = models.TextField(blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Seconds spent per phase, added up over attempts: {"staging": s, "writing": s}.
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="subscribers_import_idempotency_key",
            ),
        ]
        indexes = [
            # The sweeper: running imports whose worker stopped sending heartbeats.
            models.Index(fields=["heartbeat_at"], condition=Q(status="running"), name="subscribers_import_running"),
        ]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.original_name})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.COMPLETED, self.Status.FAILED, self.Status.CANCELLED}
