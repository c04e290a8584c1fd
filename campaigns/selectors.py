"""Reads of the campaigns app: audience previews, live progress, lists for the pages and the API."""

from __future__ import annotations

from django.db import connection
from django.db.models import Count, QuerySet
from django.utils import timezone

from campaigns.models import Campaign, Delivery, Relay, Sender
from subscribers.selectors import subscribers_sendable


def campaign_audience(*, campaign: Campaign):
    """The subscribers the campaign would reach if it started now (a queryset, not evaluated)."""
    return subscribers_sendable(
        workspace_id=campaign.workspace_id,
        list_ids=list(campaign.lists.values_list("pk", flat=True)),
        segment=campaign.segment,
        exclude_list_ids=list(campaign.exclude_lists.values_list("pk", flat=True)),
    )


def campaign_audience_count(*, campaign: Campaign) -> int:
    return campaign_audience(campaign=campaign).count()


def campaigns_for_workspace(*, workspace_id: int) -> QuerySet[Campaign]:
    return Campaign.objects.filter(workspace_id=workspace_id).select_related("sender").order_by("-created_at", "-id")


def verified_senders(*, workspace_id: int) -> QuerySet[Sender]:
    return Sender.objects.filter(workspace_id=workspace_id, verified_at__isnull=False)


def workspace_relays(*, workspace_id: int) -> QuerySet[Relay]:
    return Relay.objects.filter(workspace_id=workspace_id).order_by("priority", "name", "id")


def workspace_attribute_keys(*, workspace_id: int) -> set[str]:
    """The custom attribute names the workspace's subscribers carry (what templates may reference)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT jsonb_object_keys(attributes) FROM subscribers_subscriber "
            "WHERE workspace_id = %s AND jsonb_typeof(attributes) = 'object'",
            [workspace_id],
        )
        return {key for (key,) in cursor.fetchall()}


def campaign_progress(*, campaign: Campaign) -> dict:
    """Live figures for the progress bar and the API: counts, rate and time left.

    The counters move in the same transaction as the ledger rows, so they are exact; only a
    cancelled campaign needs a count of its cancelled rows.
    """
    total = campaign.recipient_count
    sent, failed, bounced = campaign.sent_count, campaign.failed_count, campaign.bounced_count
    cancelled = 0
    deferred = 0
    if campaign.status == Campaign.Status.CANCELLED:
        cancelled = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.CANCELLED).count()
    elif campaign.status in (Campaign.Status.SENDING, Campaign.Status.PAUSED):
        deferred = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.DEFERRED).count()
    done = sent + failed + bounced + cancelled
    remaining = max(total - done, 0)
    rate = 0.0
    seconds_left = None
    if campaign.started_at and sent + failed + bounced:
        end = campaign.finished_at or timezone.now()
        elapsed = max((end - campaign.started_at).total_seconds(), 0.001)
        rate = (sent + failed + bounced) / elapsed
        if campaign.status == Campaign.Status.SENDING and rate > 0:
            seconds_left = round(remaining / rate)
    return {
        "id": campaign.pk,
        "status": campaign.status,
        "status_display": campaign.get_status_display(),
        "recipients": total,
        "sent": sent,
        "failed": failed,
        "bounced": bounced,
        "complained": campaign.complained_count,
        "deferred": deferred,
        "cancelled": cancelled,
        "remaining": remaining,
        "percent": round(100 * done / total, 1)
        if total
        else (100.0 if campaign.status == Campaign.Status.SENT else 0.0),
        "rate_per_second": round(rate, 1),
        "seconds_left": seconds_left,
        "pause_reason": campaign.pause_reason,
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }


def delivery_status_counts(*, campaign: Campaign) -> dict[str, int]:
    return dict(
        Delivery.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
