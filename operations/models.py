"""Operations records: database backups and the restore drills that prove they can be restored."""

from django.db import models

from common.models import TimeStampedModel


class Backup(TimeStampedModel):
    """One pg_dump of the whole database, with the exact row counts of the snapshot it dumped."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True, help_text="Relative to BACKUP_DIR.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    table_counts = models.JSONField(default=dict, blank=True, help_text="Rows per table in the dumped snapshot.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # The health check and the restore drill ask for the newest successful backup.
            models.Index(
                fields=["-started_at"], name="operations_backup_ok_recent", condition=models.Q(status="succeeded")
            )
        ]

    def __str__(self) -> str:
        return f"Backup {self.started_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"


class RestoreDrill(TimeStampedModel):
    """A backup restored into a scratch database and checked against what it should contain."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    backup = models.ForeignKey(Backup, null=True, blank=True, on_delete=models.SET_NULL, related_name="drills")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    checks = models.JSONField(default=dict, blank=True, help_text="Per table: expected and restored rows, samples.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Restore drill {self.started_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"


class AlertChannel(TimeStampedModel):
    """Where alerts are sent: an email address, a Slack-compatible or generic webhook, or PagerDuty."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        SLACK = "slack", "Slack-compatible webhook"
        PAGERDUTY = "pagerduty", "PagerDuty Events v2"
        WEBHOOK = "webhook", "Generic JSON webhook"

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    target = models.CharField(
        max_length=500,
        help_text="Email address, or the webhook URL (PagerDuty: the Events v2 URL, "
        "https://events.pagerduty.com/v2/enqueue).",
    )
    routing_key = models.CharField(max_length=100, blank=True, help_text="PagerDuty integration (routing) key.")
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    receives_escalations = models.BooleanField(
        default=True, help_text="Also told when an alert stays unacknowledged past the escalation delay."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["email", "slack", "pagerduty", "webhook"]),
                name="operations_alertchannel_kind_known",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self):
        from django.core.exceptions import ValidationError
        from django.core.validators import URLValidator, validate_email

        if self.kind not in self.Kind.values:
            raise ValidationError({"kind": f"Unknown channel type {self.kind!r}; choose one of {self.Kind.values}."})
        try:
            if self.kind == self.Kind.EMAIL:
                validate_email(self.target)
            else:
                URLValidator(schemes=["http", "https"])(self.target)
        except ValidationError:
            expected = "an email address" if self.kind == self.Kind.EMAIL else "an http(s) URL"
            raise ValidationError({"target": f"A {self.get_kind_display()} channel needs {expected}."}) from None
        if self.kind == self.Kind.PAGERDUTY and not self.routing_key:
            raise ValidationError({"routing_key": "PagerDuty needs the integration's routing key."})


class Alert(TimeStampedModel):
    """One condition of one alert rule (a fingerprint), from the moment it is seen until it clears.

    Repeats of a firing condition update this row instead of creating new alerts, so each
    channel hears about it once when it fires, once if it escalates, and once when it resolves.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # seen, but not yet for the rule's whole `for` duration
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    rule = models.CharField(max_length=60)
    fingerprint = models.CharField(max_length=200)
    severity = models.CharField(max_length=10, choices=AlertChannel.Severity.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    summary = models.CharField(max_length=500)
    value = models.FloatField(null=True, blank=True)
    runbook = models.CharField(max_length=200, blank=True)
    first_seen_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=254, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-first_seen_at"]
        constraints = [
            # At most one open alert per condition: evaluation updates it rather than duplicating it.
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=~models.Q(status="resolved"),
                name="operations_alert_one_open_per_fingerprint",
            )
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.summary}"


class AlertNotification(TimeStampedModel):
    """One message about one alert to one channel, retried until delivered or out of attempts."""

    class Kind(models.TextChoices):
        FIRING = "firing", "Firing"
        ESCALATED = "escalated", "Escalated"
        RESOLVED = "resolved", "Resolved"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel", "kind"], name="operations_notification_once")
        ]
        indexes = [
            # The monitor's delivery loop: pending notifications whose next attempt is due.
            models.Index(fields=["next_attempt_at"], name="operations_notif_due", condition=models.Q(status="pending"))
        ]


class Incident(TimeStampedModel):
    """An operator's account of something going wrong, shown on the public status page."""

    class Impact(models.TextChoices):
        NONE = "none", "None"
        MINOR = "minor", "Minor (degraded performance)"
        MAJOR = "major", "Major (partial outage)"
        CRITICAL = "critical", "Critical (full outage)"

    class Status(models.TextChoices):
        INVESTIGATING = "investigating", "Investigating"
        IDENTIFIED = "identified", "Identified"
        MONITORING = "monitoring", "Monitoring"
        RESOLVED = "resolved", "Resolved"

    title = models.CharField(max_length=200)
    impact = models.CharField(max_length=10, choices=Impact.choices, default=Impact.MINOR)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.INVESTIGATING)
    components = models.JSONField(default=list, help_text="Keys of the affected status components.")
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    postmortem = models.TextField(blank=True, help_text="Post-incident summary, written when it is resolved.")
    created_by = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # The status page lists the incidents still open.
            models.Index(
                fields=["-started_at"], name="operations_incident_open", condition=~models.Q(status="resolved")
            )
        ]

    def __str__(self) -> str:
        return self.title


class IncidentUpdate(TimeStampedModel):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    status = models.CharField(max_length=15, choices=Incident.Status.choices)
    message = models.TextField()
    estimated_resolution_at = models.DateTimeField(null=True, blank=True)
    posted_by = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["-created_at"]


class StatusSubscription(TimeStampedModel):
    """A client's address that receives incident updates by email, once confirmed."""

    email = models.EmailField(unique=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.email


class SliMinute(models.Model):
    """Good and total events of one service level indicator in one minute.

    `buffer` rows hold a minute's count flushed from Redis (rewritten whole, so a repeated
    flush changes nothing); `direct` rows count events written straight to Postgres while
    Redis was away; `ledger` rows are a minute counted whole from the apps' own tables (the
    delivery ledger, finished imports) by the monitor, also rewritten whole. An objective's
    figure over a window is the sum of all three.
    """

    class Source(models.TextChoices):
        BUFFER = "buffer", "Flushed from Redis"
        DIRECT = "direct", "Written directly"
        LEDGER = "ledger", "Read from the apps' tables"

    objective = models.CharField(max_length=40)
    minute = models.DateTimeField()
    source = models.CharField(max_length=6, choices=Source.choices)
    good = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["objective", "minute", "source"], name="operations_sliminute_unique"),
            models.CheckConstraint(
                condition=models.Q(good__gte=0) & models.Q(good__lte=models.F("total")),
                name="operations_sliminute_good_within_total",
            ),
        ]
        indexes = [models.Index(fields=["objective", "minute"], name="operations_sli_window")]

    def __str__(self) -> str:
        return f"{self.objective} {self.minute:%Y-%m-%d %H:%M}: {self.good}/{self.total}"


class SliCursor(models.Model):
    """How far the monitor has read an app's table for an indicator: every minute before
    `position` is counted. Minutes are rewritten whole, so a rerun never counts one twice."""

    objective = models.CharField(max_length=40, unique=True)
    position = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.objective} read up to {self.position:%Y-%m-%d %H:%M}"


class SyntheticCheck(models.Model):
    """One run of the synthetic probe (operations/synthetic.py): did a user's path work, and how fast."""

    started_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    duration_ms = models.PositiveIntegerField()
    failed_step = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    steps = models.JSONField(default=list, help_text="Each step's name, outcome, milliseconds and detail.")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        outcome = "passed" if self.ok else f"failed at {self.failed_step}"
        return f"Synthetic check {self.started_at:%Y-%m-%d %H:%M:%S} {outcome}"


class DrillProbe(TimeStampedModel):
    """A probe task run by the failure drills (tests/drills/): each start counted, the first completion kept.

    The worker drill kills the worker in the middle of a probe and checks that another worker
    ran it again to completion; the Postgres drill checks that workers still complete probes
    after a failover.
    """

    token = models.CharField(max_length=64, unique=True)
    starts = models.PositiveIntegerField(default=0)
    last_started_by = models.CharField(max_length=200, blank=True)
    completed_by = models.CharField(max_length=200, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Drill probe {self.token} ({'completed by ' + self.completed_by if self.completed_at else 'running'})"
