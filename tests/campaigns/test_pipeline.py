"""The sending pipeline on real Celery workers, a real Postgres and real SMTP sinks."""

from __future__ import annotations

import email
import signal
import time
from email import policy

import pytest
from django.utils import timezone

from campaigns import services, tasks
from campaigns.lib import tracking
from campaigns.models import Campaign, CampaignLink, Delivery, Relay
from common.smtp_sink import SmtpSink
from subscribers.models import Subscriber, Suppression
from subscribers.tokens import read_unsubscribe_token
from tests.campaigns.helpers import (
    FAST_WORKER_ENV,
    campaign_status,
    ledger_counts,
    make_audience,
    relay_for,
    sink_deliveries,
    wait_for,
)
from tests.factories import CampaignFactory, WorkspaceFactory
from tests.workers import running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def fast_settings(settings):
    for name, value in FAST_WORKER_ENV.items():
        setattr(settings, name, type(getattr(settings, name))(value))
    return settings


@pytest.fixture
def sinks(tmp_path):
    primary = SmtpSink(tmp_path / "primary").start()
    secondary = SmtpSink(tmp_path / "secondary").start()
    yield primary, secondary
    primary.stop()
    secondary.stop()


def start_campaign(campaign: Campaign, mailing_list) -> Campaign:
    campaign.lists.set([mailing_list])
    services.campaign_schedule(campaign=campaign)
    # The schedule queued campaigns.start; run it here too (idempotent) so the test need not wait.
    services.campaign_start(campaign_id=campaign.pk)
    return Campaign.objects.get(pk=campaign.pk)


def test_a_campaign_reaches_every_recipient_once_with_every_header(fast_settings, sinks):
    primary, _ = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=240)
    relay_for(primary, workspace=workspace, name="Primary")
    campaign = CampaignFactory(
        workspace=workspace,
        subject="News for {{ subscriber.first_name }}",
        html='<p>Dear {{ subscriber.name }} (#{{ subscriber.n }}), <a href="https://example.com/a">a</a>'
        ' and <a href="https://example.com/b">b</a>.</p>',
    )
    with running_worker(queues=("send",), concurrency=2, extra_env=FAST_WORKER_ENV):
        campaign = start_campaign(campaign, audience)
        assert campaign.status == Campaign.Status.SENDING
        assert campaign.recipient_count == 240
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=90, what="the campaign to finish", tick=tasks.sweep
        )

    assert ledger_counts(campaign) == {"sent": 240}, Delivery.objects.filter(campaign=campaign).first().smtp_response
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.failed_count, campaign.finished_at is not None) == (240, 0, True)
    assert list(CampaignLink.objects.filter(campaign=campaign).values_list("position", "url")) == [
        (0, "https://example.com/a"),
        (1, "https://example.com/b"),
    ]
    arrived = sink_deliveries(primary)
    assert len(arrived) == 240
    assert len({recipient for recipient, _ in arrived}) == 240

    delivery = Delivery.objects.get(campaign=campaign, email="person7@example.org")
    message = next(m for m in primary.messages() if m["X-Sink-Rcpt-To"] == "person7@example.org")
    assert message["Subject"] == "News for Person"
    assert message["Message-ID"] == delivery.message_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"]
    assert "https://" in unsubscribe or "http://" in unsubscribe
    assert "/u/" in unsubscribe and "mailto:" in unsubscribe
    mailto_subject = unsubscribe.split("?subject=unsubscribe%20", 1)[1].split(">", 1)[0]
    named = read_unsubscribe_token(mailto_subject)
    assert (named.workspace_id, named.subscriber_id, named.campaign_id) == (
        workspace.pk,
        delivery.subscriber_id,
        campaign.pk,
    )
    token = tracking.read_delivery_token(str(message["X-Herald-Delivery"]).strip())
    assert (token.workspace_id, token.campaign_id, token.delivery_id) == (workspace.pk, campaign.pk, delivery.pk)
    html = message.get_body(("html",)).get_content()
    assert "Dear Person 7 Doe (#7)" in html
    assert "/t/c/" in html and "https://example.com/a" not in html
    assert delivery.relay.name == "Primary" and delivery.smtp_code == 250 and delivery.sent_at is not None


def test_traffic_moves_to_the_next_priority_when_the_primary_refuses(fast_settings, sinks):
    primary, secondary = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=150)
    first = relay_for(primary, workspace=workspace, name="Primary", priority=10)
    relay_for(secondary, workspace=workspace, name="Secondary", priority=20)
    primary.set_behaviour("refuse")
    campaign = CampaignFactory(workspace=workspace)
    with running_worker(queues=("send",), concurrency=2, extra_env=FAST_WORKER_ENV):
        start_campaign(campaign, audience)
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=90, what="the campaign to finish", tick=tasks.sweep
        )

    assert ledger_counts(campaign) == {"sent": 150}
    assert primary.count() == 0 and secondary.count() == 150
    first.refresh_from_db()
    assert first.circuit_state == Relay.Circuit.OPEN
    assert "Connection" in first.last_error or "refused" in first.last_error.lower()


def test_equal_priorities_share_the_load(fast_settings, sinks):
    primary, secondary = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=200)
    relay_for(primary, workspace=workspace, name="A", priority=10, weight=1)
    relay_for(secondary, workspace=workspace, name="B", priority=10, weight=1)
    campaign = CampaignFactory(workspace=workspace)
    with running_worker(queues=("send",), concurrency=2, extra_env=FAST_WORKER_ENV):
        start_campaign(campaign, audience)
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=90, what="the campaign to finish", tick=tasks.sweep
        )

    assert primary.count() + secondary.count() == 200
    assert primary.count() > 50 and secondary.count() > 50


def test_a_421_defers_and_the_campaign_completes_once_the_relay_recovers(fast_settings, sinks):
    primary, _ = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=60)
    relay = relay_for(primary, workspace=workspace, name="Only")
    primary.set_behaviour("tempfail")
    campaign = CampaignFactory(workspace=workspace)
    with running_worker(queues=("send",), concurrency=1, extra_env=FAST_WORKER_ENV):
        start_campaign(campaign, audience)
        wait_for(
            lambda: Relay.objects.get(pk=relay.pk).circuit_state == Relay.Circuit.OPEN,
            timeout=30,
            what="the circuit to open",
            tick=tasks.sweep,
        )
        assert primary.count() == 0
        assert Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENT).count() == 0
        primary.set_behaviour("accept")
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=90, what="the campaign to finish", tick=tasks.sweep
        )

    assert ledger_counts(campaign) == {"sent": 60}
    assert len({recipient for recipient, _ in sink_deliveries(primary)}) == 60
    assert Relay.objects.get(pk=relay.pk).circuit_state == Relay.Circuit.CLOSED


def test_a_5xx_is_a_hard_failure_and_a_5_1_1_bounces_and_suppresses(fast_settings, sinks):
    primary, _ = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=20)
    relay_for(primary, workspace=workspace, name="Rejecting")
    primary.set_behaviour("reject")  # 550 5.1.1 on every RCPT
    campaign = CampaignFactory(workspace=workspace)
    with running_worker(queues=("send",), concurrency=1, extra_env=FAST_WORKER_ENV):
        start_campaign(campaign, audience)
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=60, what="the campaign to finish", tick=tasks.sweep
        )

    assert ledger_counts(campaign) == {"bounced": 20}
    delivery = Delivery.objects.filter(campaign=campaign).first()
    assert delivery.smtp_code == 550 and "5.1.1" in delivery.smtp_response
    campaign.refresh_from_db()
    assert campaign.bounced_count == 20
    assert Subscriber.objects.filter(workspace=workspace, status=Subscriber.Status.BOUNCED).count() == 20
    assert Suppression.objects.filter(workspace=workspace, reason=Suppression.Reason.HARD_BOUNCE).count() == 20


def test_the_sweeper_hands_back_the_rows_of_a_killed_worker(fast_settings, sinks):
    primary, _ = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=400)
    relay_for(primary, workspace=workspace, name="Primary", max_per_second=100)
    campaign = CampaignFactory(workspace=workspace)
    with running_worker(queues=("send",), concurrency=1, extra_env=FAST_WORKER_ENV) as doomed:
        start_campaign(campaign, audience)
        # Killed while it holds a batch: between batches (waiting for the rate limit) it holds none.
        wait_for(
            lambda: (
                primary.count() >= 60
                and Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENDING).exists()
            ),
            timeout=30,
            what="sending to start",
        )
        doomed.kill(signal.SIGKILL)
    leased = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENDING).count()
    assert leased > 0, "the killed worker held a batch"
    with running_worker(queues=("send",), concurrency=1, extra_env=FAST_WORKER_ENV):
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=120, what="the campaign to finish", tick=tasks.sweep
        )

    assert ledger_counts(campaign) == {"sent": 400}
    arrived = [recipient for recipient, _ in sink_deliveries(primary)]
    assert set(arrived) == set(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True))
    # Only messages of the batch in flight at the kill can arrive twice.
    assert len(arrived) - 400 <= int(FAST_WORKER_ENV["SEND_BATCH_SIZE"])


def test_pause_stops_sending_within_seconds_and_resume_finishes(fast_settings, sinks):
    primary, _ = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=300)
    relay_for(primary, workspace=workspace, name="Primary")
    campaign = CampaignFactory(workspace=workspace, rate_limit_per_second=40)
    with running_worker(queues=("send",), concurrency=2, extra_env=FAST_WORKER_ENV):
        start_campaign(campaign, audience)
        wait_for(lambda: primary.count() >= 20, timeout=30, what="sending to start")
        services.campaign_pause(campaign=campaign, reason="Checking a typo")
        paused_at = timezone.now()
        wait_for(
            lambda: not Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENDING).exists(),
            timeout=5,
            what="batches to hand back their rows",
        )
        assert (timezone.now() - paused_at).total_seconds() < 5
        count_after_pause = primary.count()
        time.sleep(2)
        assert primary.count() == count_after_pause < 300
        assert campaign_status(campaign) == "paused"
        services.campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk))
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=60, what="the campaign to finish", tick=tasks.sweep
        )

    assert ledger_counts(campaign) == {"sent": 300}
    assert primary.count() == 300


def test_cancel_stops_sending_and_marks_the_rest_cancelled(fast_settings, sinks):
    primary, _ = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=300)
    relay_for(primary, workspace=workspace, name="Primary")
    campaign = CampaignFactory(workspace=workspace, rate_limit_per_second=40)
    with running_worker(queues=("send",), concurrency=1, extra_env=FAST_WORKER_ENV):
        start_campaign(campaign, audience)
        wait_for(lambda: primary.count() >= 20, timeout=30, what="sending to start")
        services.campaign_cancel(campaign=campaign)
        wait_for(
            lambda: not Delivery.objects.filter(campaign=campaign, status__in=["sending", "queued"]).exists(),
            timeout=5,
            tick=tasks.sweep,
            what="the ledger to settle",
        )
    counts = ledger_counts(campaign)
    assert set(counts) == {"sent", "cancelled"}
    assert counts["sent"] == primary.count() < 300
    assert campaign_status(campaign) == "cancelled"


def test_the_campaign_rate_limit_holds_across_workers(fast_settings, sinks):
    primary, _ = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=100)
    relay_for(primary, workspace=workspace, name="Primary")
    campaign = CampaignFactory(workspace=workspace, rate_limit_per_second=25)
    with running_worker(queues=("send",), concurrency=2, extra_env=FAST_WORKER_ENV):
        started = time.monotonic()
        start_campaign(campaign, audience)
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=60, what="the campaign to finish", tick=tasks.sweep
        )
        elapsed = time.monotonic() - started
    assert primary.count() == 100
    # 100 messages at 25/s with a one-second burst take at least three seconds.
    assert elapsed >= 3.0
    names = primary.store.names()
    first_ns, last_ns = int(names[0][:20]), int(names[-1][:20])
    assert (last_ns - first_ns) / 1e9 >= 2.8


def test_message_headers_cannot_be_injected_through_subscriber_names(fast_settings, sinks):
    primary, _ = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=1)
    Subscriber.objects.filter(workspace=workspace).update(name="Eve\r\nBcc: victim@example.net")
    relay_for(primary, workspace=workspace, name="Primary")
    campaign = CampaignFactory(workspace=workspace, subject="Hi {{ subscriber.name }}")
    with running_worker(queues=("send",), concurrency=1, extra_env=FAST_WORKER_ENV):
        start_campaign(campaign, audience)
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=60, what="the campaign to finish", tick=tasks.sweep
        )
    raw = (primary.store.messages_dir / primary.store.names()[0]).read_bytes()
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Bcc"] is None
    assert message["X-Sink-Rcpt-To"] == "person1@example.org"


def test_messages_from_a_verified_sending_domain_are_dkim_signed(fast_settings, sinks):
    from campaigns.lib.message import generate_dkim_key
    from campaigns.models import SendingDomain

    primary, _ = sinks
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=3)
    relay_for(primary, workspace=workspace, name="Primary")
    campaign = CampaignFactory(workspace=workspace)
    private_pem, public = generate_dkim_key(bits=1024)
    SendingDomain.objects.create(
        workspace=workspace,
        domain=campaign.sender.domain,
        dkim_selector="herald1",
        dkim_private_key=private_pem,
        dkim_public_key=public,
        verified_at=timezone.now(),
    )
    with running_worker(queues=("send",), concurrency=1, extra_env=FAST_WORKER_ENV):
        start_campaign(campaign, audience)
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=60, what="the campaign to finish", tick=tasks.sweep
        )
    signatures = [str(message["DKIM-Signature"]) for message in primary.messages()]
    assert len(signatures) == 3
    assert all(f"d={campaign.sender.domain}" in s and "s=herald1" in s for s in signatures)
