"""Figures operations reads from the other apps' own tables and Redis (no app pushes to operations).

Everything here is a read, made when /metrics is scraped or when the monitor evaluates its
rules, so the apps stay unaware of being watched (the dependency rule: operations reads every
app, no app imports operations).

The ledger is large, so delivery outcomes are counted over a recent window only, and only in
the campaigns that can have had outcomes in it (sending or paused, or finished or cancelled
since the window began); within those campaigns Postgres walks the (campaign, status) index
(`campaigns_delivery_status`). A campaign finished before the window costs nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, Q, Sum

# A delivery's outcome and when it happened: accepted rows carry sent_at (a later bounce or
# complaint keeps it); rows a relay refused (failed, bounced at send time, deferred for a retry)
# carry no sent_at, and their updated_at is the moment the worker settled them.
_OUTCOMES_SQL = """
    SELECT date_trunc('minute', COALESCE(d.sent_at, d.updated_at)) AS minute,
           d.relay_id,
           CASE WHEN d.sent_at IS NOT NULL THEN 'sent' ELSE d.status END AS outcome,
           count(*)
    FROM campaigns_delivery d
    WHERE d.campaign_id IN (
            SELECT c.id FROM campaigns_campaign c
            WHERE c.status IN ('sending', 'paused')
               OR (c.status IN ('sent', 'cancelled') AND COALESCE(c.finished_at, c.updated_at) >= %(since)s)
          )
      AND (
            (d.sent_at >= %(since)s AND d.sent_at < %(until)s)
         OR (d.sent_at IS NULL AND d.status IN ('failed', 'bounced', 'deferred')
             AND d.updated_at >= %(since)s AND d.updated_at < %(until)s)
          )
    GROUP BY 1, 2, 3
"""


@dataclass(frozen=True)
class OutcomeCount:
    minute: datetime
    relay_id: int | None
    outcome: str  # sent (accepted by a relay), failed, bounced or deferred
    count: int

    @property
    def accepted(self) -> bool:
        return self.outcome == "sent"


def delivery_outcomes(*, since: datetime, until: datetime) -> list[OutcomeCount]:
    """Send attempts settled in [since, until), per minute, relay and outcome."""
    with connection.cursor() as cursor:
        cursor.execute(_OUTCOMES_SQL, {"since": since, "until": until})
        return [OutcomeCount(*row) for row in cursor.fetchall()]


@dataclass(frozen=True)
class RelayCircuit:
    relay_id: int
    name: str
    workspace: str  # the workspace's slug, or "platform" for a platform default relay
    state: str  # closed, open or half_open
    failures: int


def relay_circuits() -> list[RelayCircuit]:
    """Every active relay's circuit breaker, from the Postgres copy all workers agree on."""
    from campaigns.models import Relay

    rows = Relay.objects.filter(is_active=True).values_list(
        "pk", "name", "workspace__slug", "circuit_state", "circuit_failures"
    )
    return [RelayCircuit(pk, name, slug or "platform", state, failures) for pk, name, slug, state, failures in rows]


def relay_names() -> dict[int, tuple[str, str]]:
    """relay id -> (name, workspace slug or "platform"), active or not (old deliveries name them)."""
    from campaigns.models import Relay

    return {
        pk: (name, slug or "platform") for pk, name, slug in Relay.objects.values_list("pk", "name", "workspace__slug")
    }


def import_rows_by_status() -> dict[str, tuple[int, int]]:
    """Import status -> (imports, rows read so far). One row per import: a small table."""
    from subscribers.models import Import

    rows = Import.objects.values("status").annotate(imports=Count("pk"), rows=Sum("records_read"))
    return {row["status"]: (row["imports"], row["rows"] or 0) for row in rows}


def tracking_events_buffered() -> dict[str, int]:
    """Tracking events not yet in Postgres: in the Redis stream, and in this node's spool files."""
    from analytics import buffer

    buffered = {}
    with contextlib.suppress(Exception):  # Redis away: the stream's figure is missing, not zero
        buffered["stream"] = buffer.stream_length()
    spooled = 0
    directory = buffer.spool_dir()
    if directory.is_dir():
        for path in [*directory.glob("events-*.jsonl"), *directory.glob("events-*.flushing-*")]:
            with contextlib.suppress(OSError), open(path, encoding="utf-8") as handle:
                spooled += sum(1 for line in handle if line.strip())
    buffered["spool"] = spooled
    return buffered


def unsubscribes_queued() -> int:
    from subscribers.unsubscribe_queue import pending_count

    return pending_count()


@dataclass(frozen=True)
class CampaignRate:
    campaign_id: int
    name: str
    workspace: str
    deliveries: int
    bounces: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.bounces / self.deliveries if self.deliveries else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.deliveries if self.deliveries else 0.0


def sending_campaign_rates() -> list[CampaignRate]:
    """Bounce and complaint figures of every campaign now sending, or paused by its own rate
    check (it stays in view until someone resumes or cancels it), from the campaign's counters
    (campaigns.bounces.campaign_rates: they move with the ledger, no count over it)."""
    from campaigns.bounces import campaign_rates
    from campaigns.models import Campaign

    running = Q(status=Campaign.Status.SENDING) | Q(
        status=Campaign.Status.PAUSED, pause_reason__startswith="Paused automatically"
    )
    rates = []
    for campaign in Campaign.objects.filter(running).select_related("workspace"):
        figures = campaign_rates(campaign=campaign)
        rates.append(
            CampaignRate(
                campaign.pk,
                campaign.name,
                campaign.workspace.slug,
                figures.deliveries,
                figures.hard_bounces,
                figures.complaints,
            )
        )
    return rates


def imports_finished(*, since: datetime, until: datetime) -> list[tuple]:
    """Imports that finished (completed or failed) in [since, until): (finished, uploaded, queued,
    status, rows, rows read). Cancelled imports say nothing about Herald's speed and are left out."""
    from subscribers.models import Import

    return list(
        Import.objects.filter(finished_at__gte=since, finished_at__lt=until)
        .filter(Q(status=Import.Status.COMPLETED) | Q(status=Import.Status.FAILED))
        .values_list("finished_at", "created_at", "queued_at", "status", "total_rows", "records_read")
    )
