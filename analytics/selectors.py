"""Reads of the analytics app: reports, dashboards and comparisons, all from the rollups.

Reports read the Postgres standby (the `replica` alias) when one is configured and not lagging
more than REPLICA_MAX_LAG_SECONDS, else the primary; when neither answers, the last figures
computed are returned from the cache, with their age (ARCHITECTURE.md invariant 4). Page views
never aggregate the events table: every figure is a rollup row kept by the drain and the syncs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections
from django.utils import timezone

from analytics.access import get_campaign_for_report
from analytics.models import (
    CampaignRollup,
    Event,
    RecipientActivity,
    WorkspaceDailyStat,
)
from campaigns.models import Campaign, Delivery

COMPLAINT_LIMIT = 0.003  # Gmail's and Yahoo's published ceiling for spam complaints
COMPLAINT_WARNING = 0.002
BOUNCE_LIMIT = 0.05  # campaigns pause themselves past 5% hard bounces
BOUNCE_WARNING = 0.03
LAG_CHECK_SECONDS = 5.0
STALE_KEEP_SECONDS = 30 * 24 * 3600

_replica_state = {"checked": 0.0, "usable": False}


class FiguresUnavailable(Exception):
    """No database answered and nothing was cached yet."""


@dataclass
class Figures:
    data: dict
    computed_at: datetime
    source: str  # "replica", "primary", or "cache" (no database answered)
    notices: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return self.source == "cache"

    @property
    def age_seconds(self) -> int:
        return max(0, int((timezone.now() - self.computed_at).total_seconds()))


# --- where to read ---------------------------------------------------------------------


def replica_usable() -> bool:
    """Whether the standby is configured, answering and no further behind than allowed (checked every 5 s)."""
    if "replica" not in settings.DATABASES:
        return False
    now = time.monotonic()
    if now - _replica_state["checked"] < LAG_CHECK_SECONDS:
        return _replica_state["usable"]
    usable = False
    try:
        with connections["replica"].cursor() as cursor:
            cursor.execute(
                "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0"
                " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
            )
            usable = float(cursor.fetchone()[0]) <= settings.REPLICA_MAX_LAG_SECONDS
    except DatabaseError:
        usable = False
    _replica_state.update(checked=now, usable=usable)
    return usable


def read_aliases() -> list[str]:
    return ["replica", "default"] if replica_usable() else ["default"]


def with_fallback(*, key: str, compute: Callable[[str], dict]) -> Figures:
    """Compute figures from the best database; cache them; serve the cached copy when none answers.

    `compute(alias)` may raise Http404 (not the caller's), which passes through untouched.
    A copy younger than ANALYTICS_REPORT_CACHE_SECONDS is served without reading at all.
    """
    cached = cache.get(key)
    now = timezone.now()
    if cached and (now - cached["at"]).total_seconds() < settings.ANALYTICS_REPORT_CACHE_SECONDS:
        return Figures(cached["data"], cached["at"], cached["source"])
    notices = []
    for alias in read_aliases():
        try:
            data = compute(alias)
        except DatabaseError:
            if alias == "replica":
                notices.append("The reporting standby did not answer; these figures come from the primary.")
                _replica_state.update(checked=time.monotonic(), usable=False)
            continue
        source = "replica" if alias == "replica" else "primary"
        cache.set(key, {"data": data, "at": now, "source": source}, STALE_KEEP_SECONDS)
        return Figures(data, now, source, notices)
    if cached:
        return Figures(cached["data"], cached["at"], "cache")
    raise FiguresUnavailable


# --- figures -------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def rates(totals: dict) -> dict:
    delivered = totals["delivered"]
    return {
        "open_rate": _ratio(totals["unique_opens"], delivered),
        "click_rate": _ratio(totals["unique_clicks"], delivered),
        "click_to_open_rate": _ratio(totals["unique_clicks"], totals["unique_opens"]),
        "bounce_rate": _ratio(totals["bounced"], delivered + totals["bounced"]),
        "complaint_rate": _ratio(totals["complained"], delivered),
        "unsubscribe_rate": _ratio(totals["unsubscribed"], delivered),
    }


TOTAL_FIELDS = (
    "sent",
    "delivered",
    "failed",
    "bounced",
    "complained",
    "unsubscribed",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "bot_opens",
    "bot_clicks",
)


def _totals(rollup: CampaignRollup | None) -> dict:
    return {name: getattr(rollup, name, 0) if rollup else 0 for name in TOTAL_FIELDS}


def _campaign_summary(campaign: Campaign) -> dict:
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "subject": campaign.subject,
        "status": campaign.status,
        "status_display": campaign.get_status_display(),
        "recipient_count": campaign.recipient_count,
        "started_at": campaign.started_at,
        "finished_at": campaign.finished_at,
    }


FIGURES_SQL = """
    SELECT
      (SELECT row_to_json(r) FROM analytics_campaignrollup r WHERE r.campaign_id = %(c)s),
      (SELECT COALESCE(json_agg(h ORDER BY h.hour), '[]') FROM (
          SELECT hour, opens, unique_opens, clicks, unique_clicks FROM analytics_campaignhourlyrollup
          WHERE campaign_id = %(c)s) h),
      (SELECT COALESCE(json_agg(l ORDER BY l.clicks DESC, l.position), '[]') FROM (
          SELECT r.position, COALESCE(cl.url, '') AS url, r.clicks, r.unique_clicks
          FROM analytics_linkrollup r
          LEFT JOIN campaigns_campaignlink cl ON cl.campaign_id = r.campaign_id AND cl.position = r.position
          WHERE r.campaign_id = %(c)s ORDER BY r.clicks DESC, r.position LIMIT 20) l),
      (SELECT count(*) FROM campaigns_campaignlink WHERE campaign_id = %(c)s),
      (SELECT COALESCE(json_agg(o ORDER BY o.outcome, o.count DESC), '[]') FROM (
          SELECT outcome, reason, count FROM analytics_outcomerollup WHERE campaign_id = %(c)s) o),
      (SELECT COALESCE(json_agg(k ORDER BY k.opens DESC, k.clicks DESC), '[]') FROM (
          SELECT device, client, opens, clicks FROM analytics_clientrollup WHERE campaign_id = %(c)s
          ORDER BY opens DESC, clicks DESC LIMIT 20) k)
"""


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def campaign_figures(*, campaign: Campaign, using: str) -> dict:
    """Everything the report shows about one campaign, in one indexed read of its rollup rows."""
    with connections[using].cursor() as cursor:
        cursor.execute(FIGURES_SQL, {"c": campaign.pk})
        rollup, hourly, links, link_count, outcomes, clients = cursor.fetchone()
    totals = {name: (rollup or {}).get(name, 0) for name in TOTAL_FIELDS}
    for row in hourly:
        row["hour"] = _when(row["hour"])
    devices: dict[str, int] = {}
    for row in clients:
        devices[row["device"]] = devices.get(row["device"], 0) + row["opens"] + row["clicks"]
    return {
        "campaign": _campaign_summary(campaign),
        "totals": totals,
        "rates": rates(totals),
        "hourly": _fill_hours(hourly),
        "links": links,
        "link_count": link_count,
        "outcomes": outcomes,
        "clients": clients,
        "devices": sorted(devices.items(), key=lambda item: -item[1]),
        "last_event_at": _when((rollup or {}).get("last_event_at")),
    }


def _fill_hours(hourly: list[dict], limit: int = 24 * 14) -> list[dict]:
    """Hours without activity as zeros, so the chart's time axis is even (at most two weeks)."""
    if not hourly:
        return []
    start, end = hourly[0]["hour"], hourly[-1]["hour"]
    if end - start > timedelta(hours=limit):
        start = end - timedelta(hours=limit)
    by_hour = {row["hour"]: row for row in hourly}
    filled, moment = [], start
    while moment <= end:
        filled.append(
            by_hour.get(moment) or {"hour": moment, "opens": 0, "unique_opens": 0, "clicks": 0, "unique_clicks": 0}
        )
        moment += timedelta(hours=1)
    return filled


def campaign_report(*, member, campaign_id: int) -> Figures:
    """A campaign's report for a member (404 outside their workspace), from the best source available."""

    def compute(alias: str) -> dict:
        campaign = get_campaign_for_report(member, campaign_id, using=alias)
        return campaign_figures(campaign=campaign, using=alias)

    figures = with_fallback(key=f"analytics:report:{member.workspace_id}:{campaign_id}", compute=compute)
    return figures


# --- recipients per outcome ----------------------------------------------------------

OUTCOMES = {
    "delivered": "Delivered",
    "opened": "Opened",
    "clicked": "Clicked",
    "bounced": "Bounced",
    "complained": "Complained",
    "unsubscribed": "Unsubscribed",
    "failed": "Failed",
}


def recipients(
    *, campaign: Campaign, outcome: str, after: int = 0, limit: int = 50, using: str = "default"
) -> list[dict]:
    """One page of a campaign's recipients with an outcome, by delivery id after `after`."""
    if outcome in ("opened", "clicked"):
        column = "first_open_at" if outcome == "opened" else "first_click_at"
        activity = list(
            RecipientActivity.objects.using(using)
            .filter(campaign_id=campaign.pk, delivery_id__gt=after, **{f"{column}__isnull": False})
            .order_by("delivery_id")
            .values("delivery_id", column, "opens", "clicks")[:limit]
        )
        emails = dict(
            Delivery.objects.using(using)
            .filter(pk__in=[row["delivery_id"] for row in activity])
            .values_list("pk", "email")
        )
        return [
            {
                "delivery_id": row["delivery_id"],
                "email": emails.get(row["delivery_id"], ""),
                "at": row[column],
                "detail": f"{row['opens']} opens, {row['clicks']} clicks",
            }
            for row in activity
        ]
    if outcome == "unsubscribed":
        events = list(
            Event.objects.using(using)
            .filter(campaign_id=campaign.pk, type=Event.Type.UNSUBSCRIBED, id__gt=after)
            .order_by("id")
            .values("id", "delivery_id", "occurred_at")[:limit]
        )
        emails = dict(
            Delivery.objects.using(using).filter(pk__in=[e["delivery_id"] for e in events]).values_list("pk", "email")
        )
        return [
            {"delivery_id": e["id"], "email": emails.get(e["delivery_id"], ""), "at": e["occurred_at"], "detail": ""}
            for e in events
        ]
    status = "sent" if outcome == "delivered" else outcome
    rows = (
        Delivery.objects.using(using)
        .filter(campaign_id=campaign.pk, status=status, pk__gt=after)
        .order_by("pk")
        .values("pk", "email", "sent_at", "bounced_at", "complained_at", "updated_at", "smtp_response")[:limit]
    )
    return [
        {
            "delivery_id": row["pk"],
            "email": row["email"],
            "at": row["complained_at"] or row["bounced_at"] or row["sent_at"] or row["updated_at"],
            "detail": row["smtp_response"] if outcome != "delivered" else "",
        }
        for row in rows
    ]


def recipients_all(*, campaign: Campaign, outcome: str, using: str = "default") -> Iterator[dict]:
    """Every recipient with an outcome, page by page (for the CSV export)."""
    after = 0
    while True:
        page = recipients(campaign=campaign, outcome=outcome, after=after, limit=2000, using=using)
        yield from page
        if len(page) < 2000:
            return
        after = page[-1]["delivery_id"]


# --- the workspace dashboard and comparisons ---------------------------------------


def workspace_dashboard(*, member) -> Figures:
    """Recent campaigns, subscriber growth and list health of the member's workspace."""

    def compute(alias: str) -> dict:
        workspace_id = member.workspace_id
        campaigns = list(
            Campaign.objects.using(alias).filter(workspace_id=workspace_id).order_by("-created_at", "-id")[:10]
        )
        rollups = {
            r.campaign_id: r
            for r in CampaignRollup.objects.using(alias).filter(campaign_id__in=[c.pk for c in campaigns])
        }
        recent = []
        for campaign in campaigns:
            totals = _totals(rollups.get(campaign.pk))
            recent.append({**_campaign_summary(campaign), "totals": totals, "rates": rates(totals)})
        since = timezone.now() - timedelta(days=30)
        health = dict.fromkeys(TOTAL_FIELDS, 0)
        for rollup in CampaignRollup.objects.using(alias).filter(workspace_id=workspace_id, last_event_at__gte=since):
            for name in TOTAL_FIELDS:
                health[name] += getattr(rollup, name)
        health_rates = rates(health)
        growth = list(
            WorkspaceDailyStat.objects.using(alias)
            .filter(workspace_id=workspace_id, day__gte=(timezone.now() - timedelta(days=29)).date())
            .order_by("day")
            .values("day", "subscribers", "joined", "left")
        )
        return {
            "recent": recent,
            "campaign_count": Campaign.objects.using(alias).filter(workspace_id=workspace_id).count(),
            "subscribers": growth[-1]["subscribers"] if growth else None,
            "growth": growth,
            "health": {
                "delivered": health["delivered"],
                "bounced": health["bounced"],
                "complained": health["complained"],
                "bounce_rate": health_rates["bounce_rate"],
                "complaint_rate": health_rates["complaint_rate"],
                "bounce_level": _level(health_rates["bounce_rate"], BOUNCE_WARNING, BOUNCE_LIMIT),
                "complaint_level": _level(health_rates["complaint_rate"], COMPLAINT_WARNING, COMPLAINT_LIMIT),
                "bounce_limit": BOUNCE_LIMIT,
                "complaint_limit": COMPLAINT_LIMIT,
            },
        }

    return with_fallback(key=f"analytics:dashboard:{member.workspace_id}", compute=compute)


def _level(rate: float, warning: float, limit: float) -> str:
    if rate >= limit:
        return "over"
    if rate >= warning:
        return "warning"
    return "ok"


def campaigns_for_comparison(*, member, campaign_ids: list[int]) -> Figures:
    """Side-by-side figures of the chosen campaigns of the member's workspace (unknown ids skipped)."""
    ids = sorted(set(campaign_ids))[:10]

    def compute(alias: str) -> dict:
        campaigns = Campaign.objects.using(alias).filter(workspace_id=member.workspace_id)
        choices = list(campaigns.order_by("-created_at", "-id").values("id", "name")[:50])
        chosen = list(campaigns.filter(pk__in=ids).order_by("-created_at", "-id"))
        rollups = {r.campaign_id: r for r in CampaignRollup.objects.using(alias).filter(campaign_id__in=ids)}
        rows = []
        for campaign in chosen:
            totals = _totals(rollups.get(campaign.pk))
            rows.append({**_campaign_summary(campaign), "totals": totals, "rates": rates(totals)})
        return {"rows": rows, "choices": choices}

    key = f"analytics:compare:{member.workspace_id}:{','.join(map(str, ids))}"
    return with_fallback(key=key, compute=compute)


def workspace_campaigns(*, member, using: str = "default") -> list[dict[str, Any]]:
    campaigns = list(
        Campaign.objects.using(using)
        .filter(workspace_id=member.workspace_id)
        .exclude(status=Campaign.Status.DRAFT)
        .order_by("-created_at", "-id")[:100]
    )
    rollups = {
        r.campaign_id: r for r in CampaignRollup.objects.using(using).filter(campaign_id__in=[c.pk for c in campaigns])
    }
    out = []
    for campaign in campaigns:
        totals = _totals(rollups.get(campaign.pk))
        out.append({**_campaign_summary(campaign), "totals": totals, "rates": rates(totals)})
    return out
