"""Report benchmark: a campaign report page for a campaign with 1,000,000 deliveries and 3,000,000 events.

The ledger and the events are generated set-based in SQL (1M sent, ~1.2M opens, ~0.6M clicks,
bounces, complaints, unsubscribes and bot opens over 48 hours), and the rollups are filled from
them with the same shape the drain keeps. A gunicorn node serves the page to a signed-in owner
200 times in a row with ANALYTICS_REPORT_CACHE_SECONDS=0, so each load reads the database (the
figure a marketer waits for after the cache expires). It prints:

BENCH report p50_ms=A p99_ms=B

`make bench` runs it (bench/run.py); alone: `make bench BENCH=report`, or
`.venv/bin/python bench/report_bench.py`, which starts its own Postgres and Redis.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DELIVERIES = int(os.environ.get("BENCH_REPORT_DELIVERIES", "1000000"))
LOADS = 200

SEED_SQL = [
    # The ledger: every delivery sent an hour apart in batches; 1.5% bounced, 0.1% complained.
    """INSERT INTO campaigns_delivery (workspace_id, campaign_id, email, status, attempts, leased_by, smtp_code,
           smtp_response, message_id, sent_at, created_at, updated_at)
       SELECT %(w)s, %(c)s, 'r' || n || '@example.org',
              CASE WHEN n %% 67 = 0 THEN 'bounced' WHEN n %% 1000 = 1 THEN 'complained' ELSE 'sent' END,
              1, '', CASE WHEN n %% 67 = 0 THEN 550 ELSE 250 END,
              CASE WHEN n %% 67 = 0 THEN '550 5.1.1 user unknown' ELSE '250 ok' END, '',
              %(t0)s + (n %% 3600) * interval '1 second', now(), now()
       FROM generate_series(1, %(n)s) n""",
]
EVENTS_SQL = """
    INSERT INTO analytics_event (uid, workspace_id, campaign_id, delivery_id, subscriber_id, type, occurred_at,
        link_position, is_bot, bot_reason, device, client, ip, user_agent, detail)
    SELECT md5(%(kind)s || d.id)::uuid, d.workspace_id, d.campaign_id, d.id, NULL, %(type)s,
           d.sent_at + %(delay)s, %(position)s, %(bot)s, %(reason)s, %(device)s, %(client)s, NULL, '', ''
    FROM campaigns_delivery d WHERE d.campaign_id = %(c)s AND d.id %% %(mod)s = %(rem)s
"""
EVENT_KINDS = [
    # (kind, type, filter mod, remainder, delay, link position, bot, reason, device, client)
    ("sent", "sent", 1, 0, "interval '0'", "NULL", "false", "''", "''", "''"),
    ("open1", "opened", 5, 1, "(d.id %% 48) * interval '1 hour'", "NULL", "false", "''", "'desktop'", "'Apple Mail'"),
    ("open2", "opened", 5, 2, "(d.id %% 40) * interval '1 hour'", "NULL", "false", "''", "'mobile'", "'Gmail'"),
    ("open3", "opened", 10, 3, "(d.id %% 30) * interval '1 hour'", "NULL", "false", "''", "'desktop'", "'Outlook'"),
    (
        "reopen",
        "opened",
        10,
        1,
        "(d.id %% 47) * interval '1 hour' + interval '5 minutes'",
        "NULL",
        "false",
        "''",
        "'desktop'",
        "'Apple Mail'",
    ),
    (
        "mpp",
        "opened",
        10,
        7,
        "interval '1 minute'",
        "NULL",
        "true",
        "'apple_mpp'",
        "'proxy'",
        "'Apple Mail (privacy proxy)'",
    ),
    (
        "click1",
        "clicked",
        5,
        1,
        "(d.id %% 48) * interval '1 hour' + interval '1 minute'",
        "d.id %% 10",
        "false",
        "''",
        "'desktop'",
        "'Safari'",
    ),
    (
        "click2",
        "clicked",
        10,
        2,
        "(d.id %% 40) * interval '1 hour' + interval '2 minutes'",
        "d.id %% 7",
        "false",
        "''",
        "'mobile'",
        "'Chrome'",
    ),
    (
        "click3",
        "clicked",
        20,
        3,
        "(d.id %% 30) * interval '1 hour' + interval '3 minutes'",
        "(d.id + 3) %% 10",
        "false",
        "''",
        "'desktop'",
        "'Chrome'",
    ),
    ("open4", "opened", 5, 3, "(d.id %% 36) * interval '1 hour'", "NULL", "false", "''", "'mobile'", "'Apple Mail'"),
    ("open5", "opened", 5, 4, "(d.id %% 44) * interval '1 hour'", "NULL", "false", "''", "'tablet'", "'Apple Mail'"),
    (
        "reopen2",
        "opened",
        4,
        0,
        "(d.id %% 45) * interval '1 hour' + interval '9 minutes'",
        "NULL",
        "false",
        "''",
        "'mobile'",
        "'Gmail'",
    ),
    (
        "mpp2",
        "opened",
        10,
        8,
        "interval '2 minutes'",
        "NULL",
        "true",
        "'apple_mpp'",
        "'proxy'",
        "'Apple Mail (privacy proxy)'",
    ),
    (
        "click4",
        "clicked",
        5,
        3,
        "(d.id %% 36) * interval '1 hour' + interval '4 minutes'",
        "(d.id + 5) %% 10",
        "false",
        "''",
        "'mobile'",
        "'Safari'",
    ),
    ("bounce", "bounced", 67, 0, "interval '1 second'", "NULL", "false", "''", "''", "''"),
    ("complaint", "complained", 1000, 1, "interval '2 hours'", "NULL", "false", "''", "''", "''"),
    ("unsub", "unsubscribed", 500, 3, "interval '3 hours'", "NULL", "false", "''", "''", "''"),
]
ROLLUP_SQL = [
    """INSERT INTO analytics_campaignrollup (campaign_id, workspace_id, sent, delivered, failed, bounced, complained,
           unsubscribed, opens, unique_opens, clicks, unique_clicks, bot_opens, bot_clicks, first_event_at,
           last_event_at, updated_at)
       SELECT %(c)s, %(w)s,
              count(*) FILTER (WHERE type = 'sent'),
              count(*) FILTER (WHERE type = 'sent') - count(*) FILTER (WHERE type = 'bounced'),
              0,
              count(*) FILTER (WHERE type = 'bounced'),
              count(*) FILTER (WHERE type = 'complained'),
              count(*) FILTER (WHERE type = 'unsubscribed'),
              count(*) FILTER (WHERE type = 'opened' AND NOT is_bot),
              count(DISTINCT delivery_id) FILTER (WHERE type = 'opened' AND NOT is_bot),
              count(*) FILTER (WHERE type = 'clicked' AND NOT is_bot),
              count(DISTINCT delivery_id) FILTER (WHERE type = 'clicked' AND NOT is_bot),
              count(*) FILTER (WHERE type = 'opened' AND is_bot),
              count(*) FILTER (WHERE type = 'clicked' AND is_bot),
              min(occurred_at), max(occurred_at), now()
       FROM analytics_event WHERE campaign_id = %(c)s""",
    """INSERT INTO analytics_recipientactivity (delivery_id, campaign_id, workspace_id, opens, clicks,
           clicked_positions, first_open_at, first_click_at, last_activity_at)
       SELECT delivery_id, %(c)s, %(w)s,
              count(*) FILTER (WHERE type = 'opened'), count(*) FILTER (WHERE type = 'clicked'),
              COALESCE(array_agg(DISTINCT link_position) FILTER (WHERE link_position IS NOT NULL), '{}'),
              min(occurred_at) FILTER (WHERE type = 'opened'), min(occurred_at) FILTER (WHERE type = 'clicked'),
              max(occurred_at)
       FROM analytics_event WHERE campaign_id = %(c)s AND type IN ('opened', 'clicked') AND NOT is_bot
       GROUP BY delivery_id""",
    """INSERT INTO analytics_campaignhourlyrollup (campaign_id, hour, sent, bounced, complained, unsubscribed, opens,
           unique_opens, clicks, unique_clicks)
       SELECT %(c)s, date_trunc('hour', occurred_at),
              count(*) FILTER (WHERE type = 'sent'), count(*) FILTER (WHERE type = 'bounced'),
              count(*) FILTER (WHERE type = 'complained'), count(*) FILTER (WHERE type = 'unsubscribed'),
              count(*) FILTER (WHERE type = 'opened' AND NOT is_bot), 0,
              count(*) FILTER (WHERE type = 'clicked' AND NOT is_bot), 0
       FROM analytics_event WHERE campaign_id = %(c)s GROUP BY 2""",
    """UPDATE analytics_campaignhourlyrollup h SET unique_opens = f.o, unique_clicks = f.k
       FROM (SELECT date_trunc('hour', first_open_at) AS hour, count(*) AS o, 0 AS k FROM analytics_recipientactivity
             WHERE campaign_id = %(c)s AND first_open_at IS NOT NULL GROUP BY 1) f
       WHERE h.campaign_id = %(c)s AND h.hour = f.hour""",
    """INSERT INTO analytics_linkrollup (campaign_id, position, clicks, unique_clicks)
       SELECT %(c)s, link_position, count(*), count(DISTINCT delivery_id) FROM analytics_event
       WHERE campaign_id = %(c)s AND type = 'clicked' AND NOT is_bot GROUP BY link_position""",
    """INSERT INTO analytics_clientrollup (campaign_id, device, client, opens, clicks)
       SELECT %(c)s, device, client, count(*) FILTER (WHERE type = 'opened'), count(*) FILTER (WHERE type = 'clicked')
       FROM analytics_event WHERE campaign_id = %(c)s AND type IN ('opened', 'clicked') AND NOT is_bot
       GROUP BY device, client""",
    """INSERT INTO analytics_outcomerollup (campaign_id, outcome, reason, count)
       SELECT %(c)s, 'bounced', '5.1.1 Mailbox does not exist', count(*) FROM analytics_event
       WHERE campaign_id = %(c)s AND type = 'bounced'
       UNION ALL
       SELECT %(c)s, 'complained', 'Spam complaint (feedback report)', count(*) FROM analytics_event
       WHERE campaign_id = %(c)s AND type = 'complained'""",
]


def seed(deliveries: int = DELIVERIES) -> tuple[int, str, str]:
    """The campaign, its ledger, events and rollups; returns (campaign id, owner email, password)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Member, User, Workspace
    from campaigns.models import Campaign, CampaignLink

    workspace = Workspace.objects.create(name="Report bench", slug=f"report-bench-{int(time.time())}")
    password = "report-bench-password-1"
    user = User.objects.create_user(email=f"owner-{workspace.pk}@bench.test", password=password)
    Member.objects.create(workspace=workspace, user=user, role=Member.Role.OWNER)
    campaign = Campaign.objects.create(
        workspace=workspace, name="A million", subject="Bench", status="sent", recipient_count=deliveries
    )
    for position in range(10):
        CampaignLink.objects.create(campaign=campaign, position=position, url=f"https://example.com/page/{position}")
    params = {"w": workspace.pk, "c": campaign.pk, "n": deliveries, "t0": timezone.now() - timezone.timedelta(days=2)}
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in SEED_SQL:
            cursor.execute(sql, params)
    print(f"# {deliveries} deliveries written in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    with connection.cursor() as cursor:
        for kind, type_, mod, rem, delay, position, bot, reason, device, client in EVENT_KINDS:
            sql = (
                EVENTS_SQL.replace("%(delay)s", delay)
                .replace("%(position)s", position)
                .replace("%(bot)s", bot)
                .replace("%(reason)s", reason)
                .replace("%(device)s", device)
                .replace("%(client)s", client)
            )
            cursor.execute(sql, {**params, "kind": kind, "type": type_, "mod": mod, "rem": rem})
        cursor.execute("SELECT count(*) FROM analytics_event WHERE campaign_id = %s", [campaign.pk])
        events = cursor.fetchone()[0]
        print(f"# {events} events written in {time.monotonic() - started:.0f} s", flush=True)
        started = time.monotonic()
        for sql in ROLLUP_SQL:
            cursor.execute(sql, params)
        cursor.execute("ANALYZE")
    print(f"# rollups filled in {time.monotonic() - started:.0f} s", flush=True)
    return campaign.pk, user.email, password


def run_report_bench(*, directory: Path) -> dict:
    from common.local_services import free_port, stop_process
    from tests.web import sign_in

    sys.path.insert(0, str(REPO))
    from bench.tracking_bench import _start_node

    directory.mkdir(parents=True, exist_ok=True)
    campaign_id, email, password = seed()
    port = free_port()
    os.environ["ANALYTICS_REPORT_CACHE_SECONDS"] = "0"
    node = _start_node(port, directory / "report-web.log")
    try:
        base = f"http://127.0.0.1:{port}"
        session = sign_in(base, email, password)
        url = f"{base}/analytics/campaigns/{campaign_id}/"
        first = session.get(url, timeout=30)
        assert first.status_code == 200 and 'data-testid="engagement-chart"' in first.text, first.status_code
        timings = []
        for _ in range(LOADS):
            started = time.perf_counter()
            response = session.get(url, timeout=30)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    finally:
        stop_process(node, timeout=15)
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(f"# report of a campaign with {DELIVERIES} deliveries; {LOADS} loads, max {timings[-1]:.1f} ms", flush=True)
    print(f"BENCH report p50_ms={p50:.1f} p99_ms={p99:.1f}", flush=True)
    return {"p50_ms": p50, "p99_ms": p99}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from bench.tracking_bench import main

    sys.exit(main(run_report_bench, "report"))
