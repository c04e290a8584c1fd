"""Templates, senders, sending domains, SMTP relays, campaigns and the delivery ledger.

The ledger (`Delivery`) is the source of truth for sending: one row per (campaign,
subscriber), snapshotted once when the campaign starts and then claimed, sent and settled by
workers; the broker only carries hints that there is work (ARCHITECTURE.md, invariant 1).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from accounts.models import Workspace
from campaigns.encryption import EncryptedTextField
from common.models import TimeStampedModel
from subscribers.models import MailingList, Segment, Subscriber


class Template(TimeStampedModel):
    """Reusable content; a campaign copies it at creation so later edits never reach a campaign."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=120)
    subject = models.CharField(max_length=500, blank=True)
    preheader = models.CharField(max_length=500, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True, help_text="Plain-text part; generated from the HTML when empty.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="campaigns_template_name_unique")]

    def __str__(self) -> str:
        return self.name


class SendingDomain(TimeStampedModel):
    """A domain the workspace sends from, with the DKIM key that signs its mail."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="sending_domains")
    domain = models.CharField(max_length=253)
    dkim_selector = models.CharField(max_length=63, default="herald")
    dkim_private_key = EncryptedTextField(blank=True, help_text="PEM; stored encrypted.")
    dkim_public_key = models.TextField(blank=True, help_text="The base64 public key published in DNS.")
    verified_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "domain"], name="campaigns_sendingdomain_unique"),
            models.CheckConstraint(condition=Q(domain=Lower("domain")), name="campaigns_sendingdomain_lower"),
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class Sender(TimeStampedModel):
    """A From address; campaigns may use it only once its owner confirmed it by email."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="senders")
    email = models.CharField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "email"], name="campaigns_sender_unique"),
            models.CheckConstraint(condition=Q(email=Lower("email")), name="campaigns_sender_email_lower"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


class Relay(TimeStampedModel):
    """An SMTP relay: the workspace's own, or a platform default (no workspace).

    Lower `priority` numbers are tried first; relays of equal priority share the load by
    `weight`. The circuit-breaker columns are the Postgres copy of the state kept in Redis, so
    workers still agree on a broken relay while Redis is away.
    """

    class TlsMode(models.TextChoices):
        NONE = "none", "None (plain SMTP)"
        STARTTLS = "starttls", "STARTTLS"
        TLS = "tls", "Implicit TLS (SMTPS)"

    class Circuit(models.TextChoices):
        CLOSED = "closed", "Closed (healthy)"
        OPEN = "open", "Open (failing, not used)"
        HALF_OPEN = "half_open", "Half-open (probing)"

    workspace = models.ForeignKey(
        Workspace,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="relays",
        help_text="Empty for a platform default relay, used by workspaces without relays of their own.",
    )
    name = models.CharField(max_length=120)
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(default=587)
    tls_mode = models.CharField(max_length=8, choices=TlsMode.choices, default=TlsMode.STARTTLS)
    username = models.CharField(max_length=254, blank=True)
    password = EncryptedTextField(blank=True, help_text="Stored encrypted.")
    priority = models.PositiveIntegerField(default=10, help_text="Lower numbers are used first.")
    weight = models.PositiveIntegerField(default=1, help_text="Share of traffic among relays of equal priority.")
    max_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="Messages per second across all workers; empty for no limit."
    )
    max_connections = models.PositiveIntegerField(default=4, help_text="Connections open at once, across workers.")
    timeout_seconds = models.FloatField(default=15.0)
    is_active = models.BooleanField(default=True)
    # Circuit breaker, Postgres copy (Redis holds the live one).
    circuit_state = models.CharField(max_length=9, choices=Circuit.choices, default=Circuit.CLOSED)
    circuit_failures = models.PositiveIntegerField(default=0)
    circuit_opened_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["priority", "name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(port__gte=1) & Q(port__lte=65535), name="campaigns_relay_port_range"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="campaigns_relay_weight_positive"),
            models.CheckConstraint(condition=Q(max_connections__gte=1), name="campaigns_relay_connections_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"

    @property
    def is_platform_default(self) -> bool:
        return self.workspace_id is None


class Campaign(TimeStampedModel):
    """One mailing to an audience, from draft to sent."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # Content, copied from the template at creation and editable while draft.
    subject = models.CharField(max_length=500)
    preheader = models.CharField(max_length=500, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns")
    sender = models.ForeignKey(Sender, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns")
    reply_to = models.CharField(max_length=254, blank=True)
    # Audience: members of any of `lists`, narrowed by `segment`, minus members of `exclude_lists`.
    lists = models.ManyToManyField(MailingList, blank=True, related_name="campaigns")
    exclude_lists = models.ManyToManyField(MailingList, blank=True, related_name="excluded_from_campaigns")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns")
    track_opens = models.BooleanField(default=True)
    track_clicks = models.BooleanField(default=True)
    rate_limit_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many messages per second for this campaign."
    )
    send_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=500, blank=True)
    # Counters, moved in the same transaction as the ledger rows they count.
    recipient_count = models.PositiveIntegerField(default=0)
    sent_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    bounced_count = models.PositiveIntegerField(default=0)
    complained_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The scheduler's query: scheduled campaigns whose time has come.
            models.Index(fields=["send_at"], name="campaigns_campaign_due", condition=Q(status="scheduled")),
            models.Index(fields=["workspace", "-created_at"], name="campaigns_campaign_ws_created"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT


class Delivery(models.Model):
    """The ledger: one recipient of one campaign and what happened to their message."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"  # claimed by a worker under a lease
        SENT = "sent", "Sent"
        DEFERRED = "deferred", "Deferred"  # a temporary failure; retried at next_attempt_at
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        CANCELLED = "cancelled", "Cancelled"  # the campaign was cancelled before it was sent

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    # SET_NULL: erasing a subscriber keeps the campaign's figures (the address is blanked too).
    subscriber = models.ForeignKey(Subscriber, null=True, on_delete=models.SET_NULL, related_name="deliveries")
    email = models.CharField(max_length=254)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    leased_by = models.CharField(max_length=200, blank=True)
    relay = models.ForeignKey(Relay, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    smtp_response = models.CharField(max_length=1000, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "subscriber"], name="campaigns_delivery_unique"),
        ]
        indexes = [
            # deliveries_claim: the campaign's rows ready to send, oldest first.
            models.Index(
                fields=["campaign", "id"],
                name="campaigns_delivery_ready",
                condition=Q(status__in=["queued", "deferred"]),
            ),
            # deliveries_release_expired (the sweeper): leases that ran out.
            models.Index(fields=["lease_until"], name="campaigns_delivery_leased", condition=Q(status="sending")),
            # Progress and reports: counts by status per campaign.
            models.Index(fields=["campaign", "status"], name="campaigns_delivery_status"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.status})"


class CampaignLink(models.Model):
    """A literal link of the campaign, by position, so a click can only go where the campaign said."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="links")
    position = models.PositiveIntegerField()
    url = models.TextField()

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [models.UniqueConstraint(fields=["campaign", "position"], name="campaigns_link_position_unique")]

    def __str__(self) -> str:
        return f"{self.position}: {self.url}"


class TransactionalMessage(models.Model):
    """One message sent to one address through the API (receipts, password resets), with its outcome."""

    class Status(models.TextChoices):
        SENT = "sent", "Sent"
        DEFERRED = "deferred", "Deferred"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sender = models.ForeignKey(Sender, null=True, on_delete=models.SET_NULL, related_name="+")
    to_email = models.CharField(max_length=254)
    status = models.CharField(max_length=10, choices=Status.choices)
    relay = models.ForeignKey(Relay, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    smtp_response = models.CharField(max_length=1000, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # While deferred: when the next attempt is due (a claimed row's lease runs to this time too).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The envelope sender and the exact bytes first sent, kept while a retry may need them, so
    # every attempt is the same message with the same Message-ID. Emptied once the outcome is final.
    mail_from = models.CharField(max_length=254, blank=True)
    payload = models.BinaryField(blank=True, default=b"", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="campaigns_transactional_ws"),
            models.Index(
                fields=["next_attempt_at"], name="campaigns_transactional_due", condition=models.Q(status="deferred")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.to_email} ({self.status})"
