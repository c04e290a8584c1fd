"""Events, the rollups maintained from them, and the cursors that feed them.

`Event` is the one append-only table of what happened to a delivery (sent, opened, clicked,
bounced, ...). It is sized for hundreds of millions of rows: a BRIN index on time (cheap, since
rows arrive in time order), btrees on (campaign, type, id) and (workspace, id) for the report
and API, and a unique `uid` that makes every ingestion idempotent. It is not partitioned: a
unique key on a partitioned table must include the partition column, which would make the
idempotency key depend on when an event happened (a re-drained event must hash to the same
row whatever clock wrote it). BRIN plus retention by `DELETE ... WHERE occurred_at < x` in
batches keeps it manageable; partitioning can come when retention needs `DROP PARTITION`.

Reports never aggregate `Event`: the drain task and the ledger sync maintain the rollups below
in the same transaction as the events they count, only for rows that were newly inserted.
"""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q

from accounts.models import Workspace
from campaigns.models import Campaign


class Event(models.Model):
    class Type(models.TextChoices):
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    id = models.BigAutoField(primary_key=True)
    # Idempotency: a tracking event's uid is drawn when the request arrives and travels with it
    # through the stream, the spool file or the direct write; a ledger event's uid is derived
    # from (delivery, type). Inserting the same uid twice does nothing.
    uid = models.UUIDField(unique=True)
    # No foreign-key constraints on the hot table: checking three parents per inserted row
    # costs more than it protects, since every id comes from a signed token or the ledger.
    workspace = models.ForeignKey(Workspace, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    delivery_id = models.BigIntegerField()
    subscriber_id = models.BigIntegerField(null=True, blank=True)
    type = models.CharField(max_length=12, choices=Type.choices)
    occurred_at = models.DateTimeField()
    link_position = models.PositiveIntegerField(null=True, blank=True)
    is_bot = models.BooleanField(default=False)
    bot_reason = models.CharField(max_length=40, blank=True)
    device = models.CharField(max_length=20, blank=True)
    client = models.CharField(max_length=40, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [
            BrinIndex(fields=["occurred_at"], name="analytics_event_time_brin"),
            # Report drill-downs and the API's per-campaign listing: a campaign's events of one type, by id.
            models.Index(fields=["campaign", "type", "id"], name="analytics_event_campaign_type"),
            # The API's workspace-wide event listing (cursor = id).
            models.Index(fields=["workspace", "id"], name="analytics_event_workspace"),
            # Subscriber activity in the API.
            models.Index(
                fields=["subscriber_id", "id"],
                name="analytics_event_subscriber",
                condition=Q(subscriber_id__isnull=False),
            ),
            # Scanner detection: a delivery's recent clicks.
            models.Index(fields=["delivery_id", "type"], name="analytics_event_delivery"),
        ]

    def __str__(self) -> str:
        return f"{self.type} of delivery {self.delivery_id} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class CampaignRollup(models.Model):
    """A campaign's totals; human opens and clicks only (bots counted apart)."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, primary_key=True, related_name="rollup")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    sent = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    bounced = models.BigIntegerField(default=0)
    complained = models.BigIntegerField(default=0)
    unsubscribed = models.BigIntegerField(default=0)
    opens = models.BigIntegerField(default=0)
    unique_opens = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    unique_clicks = models.BigIntegerField(default=0)
    bot_opens = models.BigIntegerField(default=0)
    bot_clicks = models.BigIntegerField(default=0)
    first_event_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "campaign"], name="analytics_rollup_workspace")]

    def __str__(self) -> str:
        return f"Rollup of campaign {self.campaign_id}"


class CampaignHourlyRollup(models.Model):
    """A campaign's figures per hour, for the charts."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    sent = models.BigIntegerField(default=0)
    bounced = models.BigIntegerField(default=0)
    complained = models.BigIntegerField(default=0)
    unsubscribed = models.BigIntegerField(default=0)
    opens = models.BigIntegerField(default=0)
    unique_opens = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    unique_clicks = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "hour"], name="analytics_hourly_unique")]

    def __str__(self) -> str:
        return f"Campaign {self.campaign_id} at {self.hour:%Y-%m-%d %H:00}"


class LinkRollup(models.Model):
    """Human clicks per link of a campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    clicks = models.BigIntegerField(default=0)
    unique_clicks = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "position"], name="analytics_link_unique")]

    def __str__(self) -> str:
        return f"Campaign {self.campaign_id} link {self.position}"


class ClientRollup(models.Model):
    """Human opens and clicks by device and mail client (as told by user agents)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    device = models.CharField(max_length=20)
    client = models.CharField(max_length=40)
    opens = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "device", "client"], name="analytics_client_unique")]

    def __str__(self) -> str:
        return f"{self.client} on {self.device}"


class OutcomeRollup(models.Model):
    """Bounces, complaints and failures of a campaign by reason (enhanced status code)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=12)
    reason = models.CharField(max_length=80)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "outcome", "reason"], name="analytics_outcome_unique")
        ]

    def __str__(self) -> str:
        return f"{self.outcome}: {self.reason}"


class RecipientActivity(models.Model):
    """One delivery's human opens and clicks: decides what is unique and lists who did what."""

    delivery_id = models.BigIntegerField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    opens = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    clicked_positions = ArrayField(models.PositiveIntegerField(), default=list, blank=True)
    first_open_at = models.DateTimeField(null=True, blank=True)
    first_click_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Recipient lists of the report: a campaign's openers / clickers by delivery id.
            models.Index(fields=["campaign", "delivery_id"], name="analytics_activity_campaign"),
        ]

    def __str__(self) -> str:
        return f"Activity of delivery {self.delivery_id}"


class WorkspaceDailyStat(models.Model):
    """Subscriber growth per workspace per day, recomputed for recent days by a task."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    subscribers = models.BigIntegerField(default=0, help_text="Active subscribers at the end of the day.")
    joined = models.BigIntegerField(default=0)
    left = models.BigIntegerField(default=0, help_text="Unsubscribed, bounced or complained that day.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "day"], name="analytics_daily_unique")]

    def __str__(self) -> str:
        return f"Workspace {self.workspace_id} on {self.day}"


class Cursor(models.Model):
    """How far a sync has read another app's table (the ledger, list memberships)."""

    name = models.CharField(max_length=40, primary_key=True)
    position = models.DateTimeField(null=True, blank=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.position} / {self.last_id}"
