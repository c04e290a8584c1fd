"""Figures operations reads from the other apps: /metrics gauges, the SLO indicators the monitor
collects from the ledger and finished imports, and the relay, complaint and bounce alert rules."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from campaigns.models import Campaign, Delivery, Relay
from operations.alert_rules import RULES
from operations.models import SliCursor, SliMinute
from operations.slo import sli_collect
from subscribers.models import Import
from tests.factories import CampaignFactory, RelayFactory, WorkspaceFactory
from tests.operations.test_metrics import TOKEN, sample

pytestmark = pytest.mark.django_db


def scrape(client) -> str:
    response = client.get("/metrics", **TOKEN)
    assert response.status_code == 200
    return response.content.decode()


def deliveries(campaign, relay, status, count, *, at, sent=None):
    """`count` ledger rows settled at `at` (sent rows carry sent_at, refused ones only updated_at)."""
    sent = status in ("sent", "complained") if sent is None else sent
    rows = Delivery.objects.bulk_create(
        Delivery(
            workspace=campaign.workspace,
            campaign=campaign,
            email=f"{status}{n}-{campaign.pk}-{relay.pk}@example.org",
            status=status,
            relay=relay,
            sent_at=at if sent else None,
        )
        for n in range(count)
    )
    Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(updated_at=at)


def rule(key):
    return next(rule for rule in RULES if rule.key == key)


# --- /metrics ------------------------------------------------------------------------------------


def test_deliveries_are_counted_by_relay_and_outcome_over_the_recent_window(client):
    workspace = WorkspaceFactory(slug="acme")
    primary = RelayFactory(workspace=workspace, name="primary")
    backup = RelayFactory(workspace=workspace, name="backup")
    sending = CampaignFactory(workspace=workspace, status=Campaign.Status.SENDING)
    now = timezone.now()
    deliveries(sending, primary, "sent", 5, at=now - timedelta(minutes=2))
    deliveries(sending, primary, "failed", 2, at=now - timedelta(minutes=1))
    deliveries(sending, backup, "deferred", 3, at=now - timedelta(minutes=1))
    deliveries(sending, backup, "sent", 4, at=now - timedelta(minutes=40))  # before the window
    # A campaign finished long ago is not even looked at.
    old = CampaignFactory(workspace=workspace, status=Campaign.Status.SENT, finished_at=now - timedelta(days=2))
    deliveries(old, primary, "sent", 7, at=now - timedelta(days=2))

    body = scrape(client)
    assert sample(body, "herald_relay_deliveries_recent", relay="primary", workspace="acme", outcome="sent") == 5
    assert sample(body, "herald_relay_deliveries_recent", relay="primary", outcome="failed") == 2
    assert sample(body, "herald_relay_deliveries_recent", relay="backup", outcome="deferred") == 3
    assert sample(body, "herald_relay_deliveries_recent", relay="backup", outcome="sent") is None


def test_circuits_imports_buffered_events_and_queued_unsubscribes_are_exposed(client, tmp_path):
    from analytics.buffer import STREAM, redis_client
    from subscribers import unsubscribe_queue

    workspace = WorkspaceFactory(slug="acme")
    RelayFactory(workspace=workspace, name="healthy")
    RelayFactory(workspace=workspace, name="broken", circuit_state=Relay.Circuit.OPEN, circuit_failures=3)
    RelayFactory(workspace=None, name="platform-default", circuit_state=Relay.Circuit.HALF_OPEN)
    RelayFactory(workspace=workspace, name="retired", circuit_state=Relay.Circuit.OPEN, is_active=False)
    for status, read in (("completed", 1200), ("completed", 800), ("running", 300)):
        Import.objects.create(
            workspace=workspace, status=status, records_read=read, original_name="x.csv", encoding="utf-8"
        )
    client_redis = redis_client()
    client_redis.delete(STREAM, unsubscribe_queue.QUEUE_KEY)
    try:
        for n in range(3):
            client_redis.xadd(STREAM, {"e": f'{{"n": {n}}}'})
        unsubscribe_queue.enqueue({"workspace_id": workspace.pk, "email": "a@example.org"})
        unsubscribe_queue.enqueue({"workspace_id": workspace.pk, "email": "b@example.org"})
        spool = tmp_path / "spool"
        spool.mkdir()
        (spool / "events-node-1.jsonl").write_text('{"n": 1}\n{"n": 2}\n')
        with override_settings(ANALYTICS_SPOOL_DIR=str(spool)):
            body = scrape(client)
    finally:
        client_redis.delete(STREAM, unsubscribe_queue.QUEUE_KEY)

    assert sample(body, "herald_relay_circuit_open", relay="healthy", state="closed") == 0
    assert sample(body, "herald_relay_circuit_open", relay="broken", workspace="acme", state="open") == 1
    assert sample(body, "herald_relay_circuit_open", relay="platform-default", workspace="platform") == 1
    assert sample(body, "herald_relay_circuit_open", relay="retired") is None
    assert sample(body, "herald_imports", status="completed") == 2
    assert sample(body, "herald_import_rows_processed", status="completed") == 2000
    assert sample(body, "herald_import_rows_processed", status="running") == 300
    assert sample(body, "herald_tracking_events_buffered", buffer="stream") == 3
    assert sample(body, "herald_tracking_events_buffered", buffer="spool") == 2
    assert sample(body, "herald_unsubscribes_queued") == 2


def test_sending_campaigns_expose_their_bounce_and_complaint_rates(client):
    campaign = CampaignFactory(
        workspace=WorkspaceFactory(slug="acme"),
        status=Campaign.Status.SENDING,
        sent_count=1990,
        bounced_count=10,
        complained_count=5,
    )
    CampaignFactory(status=Campaign.Status.SENT, sent_count=100, complained_count=50)  # finished: not watched
    body = scrape(client)
    assert sample(body, "herald_campaign_deliveries", campaign=str(campaign.pk), workspace="acme") == 2000
    assert sample(body, "herald_campaign_complaint_rate", campaign=str(campaign.pk)) == pytest.approx(0.0025)
    assert sample(body, "herald_campaign_bounce_rate", campaign=str(campaign.pk)) == pytest.approx(0.005)
    assert body.count("herald_campaign_deliveries{") == 1


# --- SLO indicators from the apps' tables ---------------------------------------------------------


def minute(moment):
    return moment.replace(second=0, microsecond=0)


def ledger_rows(objective):
    return {
        row.minute: (row.good, row.total)
        for row in SliMinute.objects.filter(objective=objective, source=SliMinute.Source.LEDGER)
    }


@override_settings(SEND_LEASE_SECONDS=60)
def test_send_success_is_read_from_the_ledger_per_minute_and_a_rerun_counts_nothing_twice():
    relay = RelayFactory()
    campaign = CampaignFactory(workspace=relay.workspace, status=Campaign.Status.SENDING)
    now = minute(timezone.now())
    first, second = now - timedelta(minutes=10), now - timedelta(minutes=9)
    deliveries(campaign, relay, "sent", 8, at=first + timedelta(seconds=5))
    deliveries(campaign, relay, "failed", 2, at=first + timedelta(seconds=30))
    deliveries(campaign, relay, "bounced", 1, at=second, sent=False)  # refused at send time
    deliveries(campaign, relay, "complained", 3, at=second)  # accepted; a complaint came later
    deliveries(campaign, relay, "sent", 4, at=now - timedelta(seconds=30))  # too recent: not read yet

    sli_collect(now=now)
    assert ledger_rows("send_success") == {first: (8, 10), second: (3, 4)}
    cursor = SliCursor.objects.get(objective="send_success")
    assert cursor.position == now - timedelta(minutes=2)

    sli_collect(now=now)  # same moment again: nothing new, nothing doubled
    SliCursor.objects.filter(objective="send_success").update(position=first)
    sli_collect(now=now)  # the cursor lost (a restored backup): the minutes are rewritten, not added
    assert ledger_rows("send_success") == {first: (8, 10), second: (3, 4)}

    sli_collect(now=now + timedelta(minutes=3))
    assert ledger_rows("send_success")[minute(now - timedelta(seconds=30))] == (4, 4)


@override_settings(SLO_IMPORT_SECONDS_PER_100K_ROWS=120)
def test_import_latency_counts_finished_imports_against_an_allowance_scaled_by_rows():
    workspace = WorkspaceFactory()
    now = minute(timezone.now())
    finished = now - timedelta(minutes=5)

    def finished_import(status, rows, took_seconds, mapping_wait=0):
        item = Import.objects.create(
            workspace=workspace, status=status, total_rows=rows, original_name="x.csv", encoding="utf-8"
        )
        uploaded = finished - timedelta(seconds=took_seconds + mapping_wait)
        Import.objects.filter(pk=item.pk).update(
            created_at=uploaded, queued_at=uploaded + timedelta(seconds=mapping_wait), finished_at=finished
        )

    finished_import("completed", 500, 100)  # small file: the allowance is never under 120 s
    finished_import("completed", 500, 100, mapping_wait=3600)  # an hour choosing columns is not Herald's
    finished_import("completed", 1_000_000, 1100)  # 10 x 120 s allowed
    finished_import("completed", 100_000, 200)  # too slow
    finished_import("failed", 10, 1)  # failed: bad, however quick
    finished_import("cancelled", 10, 1)  # says nothing about Herald's speed

    sli_collect(now=now)
    sli_collect(now=now)
    assert ledger_rows("import_latency") == {finished: (3, 5)}


def test_a_monitor_round_feeds_the_objectives_report():
    from django.core.management import call_command

    from operations.slo import objectives_report

    relay = RelayFactory()
    campaign = CampaignFactory(workspace=relay.workspace, status=Campaign.Status.SENDING)
    deliveries(campaign, relay, "sent", 9, at=timezone.now() - timedelta(minutes=5))
    deliveries(campaign, relay, "failed", 1, at=timezone.now() - timedelta(minutes=5))
    call_command("monitor", once=True)
    call_command("monitor", once=True)  # a second round counts nothing again
    (send,) = [row for row in objectives_report() if row["key"] == "send_success"]
    one_hour = send["windows"][0]
    assert (one_hour.good, one_hour.total) == (9, 10)


# --- Alert rules ---------------------------------------------------------------------------------


def test_one_open_relay_warns_and_every_relay_of_a_workspace_open_pages():
    acme, globex = WorkspaceFactory(slug="acme"), WorkspaceFactory(slug="globex")
    RelayFactory(workspace=acme, name="acme-1", circuit_state=Relay.Circuit.OPEN, circuit_failures=4)
    RelayFactory(workspace=acme, name="acme-2")
    RelayFactory(workspace=globex, name="globex-1", circuit_state=Relay.Circuit.OPEN)
    RelayFactory(workspace=globex, name="globex-2", circuit_state=Relay.Circuit.HALF_OPEN)
    RelayFactory(workspace=None, name="default-1", circuit_state=Relay.Circuit.OPEN)
    findings = {finding.fingerprint: finding for finding in rule("relay_circuit").measure()}
    acme_1 = Relay.objects.get(name="acme-1").pk
    assert set(findings) == {f"relay_circuit:{acme_1}", "relay_circuit:all:globex", "relay_circuit:all:platform"}
    assert findings[f"relay_circuit:{acme_1}"].severity == "warning"
    assert "after 4 failures" in findings[f"relay_circuit:{acme_1}"].summary
    assert findings["relay_circuit:all:globex"].severity == "critical"
    assert "nothing sends" in findings["relay_circuit:all:platform"].summary


@override_settings(ALERT_CAMPAIGN_MIN_DELIVERIES=1000)
def test_complaint_rate_warns_at_0_2_and_pages_at_0_3_percent_once_a_campaign_has_enough_deliveries():
    def sending(sent, complaints, **fields):
        fields.setdefault("status", Campaign.Status.SENDING)
        return CampaignFactory(sent_count=sent, complained_count=complaints, **fields).pk

    fine = sending(10_000, 10)  # 0.1%
    warned = sending(10_000, 25)  # 0.25%
    paged = sending(10_000, 30)  # 0.3%
    sending(500, 5)  # 1%, but only 500 deliveries
    sending(10_000, 90, status=Campaign.Status.SENT)  # finished
    paused_itself = sending(
        10_000, 40, status=Campaign.Status.PAUSED, pause_reason="Paused automatically: 40 of 10,000 ..."
    )
    sending(10_000, 40, status=Campaign.Status.PAUSED, pause_reason="")  # paused by a person
    findings = {finding.fingerprint: finding.severity for finding in rule("complaint_rate").measure()}
    assert findings == {
        f"complaint_rate:{warned}": "warning",
        f"complaint_rate:{paged}": "critical",
        f"complaint_rate:{paused_itself}": "critical",
    }
    assert f"complaint_rate:{fine}" not in findings


@override_settings(ALERT_CAMPAIGN_MIN_DELIVERIES=1000, ALERT_BOUNCE_RATE_WARNING=3, ALERT_BOUNCE_RATE_CRITICAL=5)
def test_bounce_rate_warns_and_pages_per_sending_campaign():
    warned = CampaignFactory(status=Campaign.Status.SENDING, sent_count=960, bounced_count=40).pk  # 4%
    paged = CampaignFactory(status=Campaign.Status.SENDING, sent_count=940, bounced_count=60).pk  # 6%
    CampaignFactory(status=Campaign.Status.SENDING, sent_count=990, bounced_count=10)  # 1%
    findings = {finding.fingerprint: finding for finding in rule("bounce_rate").measure()}
    assert {key: finding.severity for key, finding in findings.items()} == {
        f"bounce_rate:{warned}": "warning",
        f"bounce_rate:{paged}": "critical",
    }
    assert "6.00% over 1,000 deliveries" in findings[f"bounce_rate:{paged}"].summary


def test_complaint_thresholds_outside_0_to_100_percent_are_refused_at_start():
    from tests.config.test_settings import assert_refused, start

    assert_refused(start({"ALERT_COMPLAINT_RATE_CRITICAL": "150"}), "ALERT_COMPLAINT_RATE_WARNING")
    assert_refused(start({"ALERT_BOUNCE_RATE_WARNING": "0"}), "ALERT_BOUNCE_RATE_WARNING")
    assert_refused(
        start({"ALERT_COMPLAINT_RATE_WARNING": "0.5", "ALERT_COMPLAINT_RATE_CRITICAL": "0.3"}),
        "ALERT_COMPLAINT_RATE_WARNING",
    )
