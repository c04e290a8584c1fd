"""Relay choice, the circuit breaker, connection caps, the ledger snapshot, claims, the sweeper and the scheduler."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import relays, sending, services, tasks
from campaigns.models import Campaign, CampaignLink, Delivery, Relay
from subscribers.models import ListMembership, Subscriber, Suppression
from tests.campaigns.helpers import make_audience
from tests.factories import CampaignFactory, RelayFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_the_lowest_priority_number_wins_and_equal_priorities_share_by_weight(team):
    heavy = RelayFactory(workspace=team.a, name="heavy", priority=10, weight=3)
    light = RelayFactory(workspace=team.a, name="light", priority=10, weight=1)
    standby = RelayFactory(workspace=team.a, name="standby", priority=20)
    chosen = Counter(relays.choose_relay([heavy, light, standby]).name for _ in range(4000))
    assert chosen["standby"] == 0
    assert 2.5 < chosen["heavy"] / chosen["light"] < 3.6
    assert relays.choose_relay([heavy, light, standby], exclude={heavy.pk, light.pk}) == standby


def test_a_workspace_without_relays_uses_the_platform_defaults(team):
    platform = RelayFactory(workspace=None, name="platform")
    RelayFactory(workspace=team.b, name="globex own")
    assert relays.relays_for_workspace(workspace_id=team.a.pk) == [platform]
    own = RelayFactory(workspace=team.a, name="acme own")
    assert relays.relays_for_workspace(workspace_id=team.a.pk) == [own]
    own.is_active = False
    own.save()
    assert relays.relays_for_workspace(workspace_id=team.a.pk) == [platform]


def test_the_circuit_opens_after_repeated_failures_and_one_worker_probes(team, settings):
    settings.RELAY_CIRCUIT_FAILURES = 3
    settings.RELAY_CIRCUIT_OPEN_SECONDS = 30
    relay = RelayFactory(workspace=team.a)
    for _ in range(2):
        relays.circuit_record_failure(relay=relay, error="421 try later")
    assert Relay.objects.get(pk=relay.pk).circuit_state == "closed"
    relays.circuit_record_failure(relay=relay, error="421 try later")
    stored = Relay.objects.get(pk=relay.pk)
    assert stored.circuit_state == "open" and stored.last_error == "421 try later"
    assert relays.choose_relay([stored]) is None  # cooling down
    Relay.objects.filter(pk=relay.pk).update(circuit_opened_at=timezone.now() - timedelta(seconds=31))
    first, second = Relay.objects.get(pk=relay.pk), Relay.objects.get(pk=relay.pk)
    assert relays.choose_relay([first]) == first  # this worker won the half-open probe
    assert relays.choose_relay([second]) is None  # another worker waits for the probe
    relays.circuit_record_success(relay=first)
    assert Relay.objects.get(pk=relay.pk).circuit_state == "closed"


def test_a_failed_probe_opens_the_circuit_again(team, settings):
    settings.RELAY_CIRCUIT_OPEN_SECONDS = 30
    relay = RelayFactory(
        workspace=team.a, circuit_state="open", circuit_opened_at=timezone.now() - timedelta(minutes=1)
    )
    assert relays.circuit_try_probe(relay=relay)
    relays.circuit_record_failure(relay=relay, error="Connection refused")
    assert Relay.objects.get(pk=relay.pk).circuit_state == "open"


def test_max_connections_is_shared_by_workers_through_redis(team):
    relay = RelayFactory(workspace=team.a, max_connections=1)
    first, second = relays.RelayPool(), relays.RelayPool()
    assert first._may_connect(relay)
    second.holders.clear()
    # A second process is another holder; simulate it with another token.
    from django_redis import get_redis_connection

    get_redis_connection("default").delete(f"herald:relay:{relay.pk}:connections")
    get_redis_connection("default").zadd(f"herald:relay:{relay.pk}:connections", {"other-host:1:1": 1e12})
    assert not second._may_connect(relay)
    result = second.send(relays=[relay], mail_from="a@x.test", rcpt="b@y.test", message=b"x")
    assert result.kind == relays.UNAVAILABLE and "connections are in use" in result.response
    assert Relay.objects.get(pk=relay.pk).circuit_failures == 0  # a full relay is not a failing one


def test_the_snapshot_takes_the_sendable_audience_once(team):
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=50)
    excluded = make_audience(workspace=workspace, count=5, name="Excluded", prefix="person4")  # person4, person40..49
    Subscriber.objects.filter(workspace=workspace, email="person1@example.org").update(status="unsubscribed")
    Subscriber.objects.filter(workspace=workspace, email="person2@example.org").update(status="bounced")
    Suppression.objects.create(workspace=workspace, value="person3@example.org")
    ListMembership.objects.filter(mailing_list=audience, subscriber__email="person5@example.org").update(
        status="unconfirmed"
    )
    campaign = CampaignFactory(workspace=workspace)
    campaign.lists.set([audience])
    campaign.exclude_lists.set([excluded])
    added = sending.deliveries_snapshot(campaign=campaign)
    emails = set(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True))
    assert added == len(emails) == 50 - 4 - 11
    assert not {"person1@example.org", "person2@example.org", "person3@example.org", "person5@example.org"} & emails
    assert not any(email.startswith("person4") for email in emails)
    assert sending.deliveries_snapshot(campaign=campaign) == 0  # running it again adds nobody


def test_claims_skip_rows_another_batch_holds_and_only_for_sending_campaigns(team):
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=30)
    campaign = CampaignFactory(workspace=workspace, status="sending")
    campaign.lists.set([audience])
    sending.deliveries_snapshot(campaign=campaign)
    first = sending.deliveries_claim(campaign_id=campaign.pk, limit=20, lease_token="a")
    second = sending.deliveries_claim(campaign_id=campaign.pk, limit=20, lease_token="b")
    assert len(first) == 20 and len(second) == 10
    assert not {row.id for row in first} & {row.id for row in second}
    assert first[0].name.startswith("Person") and first[0].attributes["n"]
    Campaign.objects.filter(pk=campaign.pk).update(status="paused")
    Delivery.objects.filter(campaign=campaign).update(status="queued", leased_by="")
    assert sending.deliveries_claim(campaign_id=campaign.pk, limit=20, lease_token="c") == []


def test_settling_writes_every_outcome_in_one_statement_and_moves_counters(team, django_assert_num_queries):
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=4)
    campaign = CampaignFactory(workspace=workspace, status="sending")
    campaign.lists.set([audience])
    sending.deliveries_snapshot(campaign=campaign)
    claimed = sending.deliveries_claim(campaign_id=campaign.pk, limit=4, lease_token="t")
    now = timezone.now()
    outcomes = [
        sending.Outcome(claimed[0].id, "sent", 250, "250 ok", None, "<a@x>", sent_at=now),
        sending.Outcome(claimed[1].id, "failed", 554, "554 no"),
        sending.Outcome(claimed[2].id, "deferred", 451, "451 later", next_attempt_at=now + timedelta(minutes=1)),
        sending.Outcome(claimed[3].id, "queued", attempted=False),
    ]
    with django_assert_num_queries(4):  # savepoint, the UPDATE ... FROM (VALUES ...), the counters, release
        counts = sending.deliveries_settle(campaign_id=campaign.pk, lease_token="t", outcomes=outcomes)
    assert counts == Counter({"sent": 1, "failed": 1, "deferred": 1, "queued": 1})
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.failed_count) == (1, 1)
    rows = {d.pk: d for d in Delivery.objects.filter(campaign=campaign)}
    assert rows[claimed[0].id].message_id == "<a@x>" and rows[claimed[0].id].attempts == 1
    assert rows[claimed[2].id].next_attempt_at is not None and rows[claimed[3].id].attempts == 0
    # A row another batch holds now is not overwritten by a late writer.
    Delivery.objects.filter(pk=claimed[3].id).update(status="sending", leased_by="other")
    late = [sending.Outcome(claimed[3].id, "sent", 250, "250 ok", sent_at=now)]
    assert sending.deliveries_settle(campaign_id=campaign.pk, lease_token="t", outcomes=late) == Counter()


def test_the_sweeper_hands_back_expired_leases_and_finishes_campaigns(team):
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=3)
    campaign = CampaignFactory(workspace=workspace, status="sending")
    campaign.lists.set([audience])
    sending.deliveries_snapshot(campaign=campaign)
    sending.deliveries_claim(campaign_id=campaign.pk, limit=3, lease_token="dead")
    Delivery.objects.filter(campaign=campaign).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert tasks.sweep()["released"] == 3
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"queued"}
    Delivery.objects.filter(campaign=campaign).update(status="sent")
    assert tasks.sweep()["finished"] == 1
    assert Campaign.objects.get(pk=campaign.pk).status == "sent"


def test_a_schedule_is_kept_in_the_database_and_beat_starts_it_when_due(team):
    workspace = WorkspaceFactory()
    audience = make_audience(workspace=workspace, count=5)
    RelayFactory(workspace=workspace)
    campaign = CampaignFactory(workspace=workspace, html='<a href="https://example.com/x">x</a>')
    campaign.lists.set([audience])
    services.campaign_schedule(campaign=campaign, send_at=timezone.now() + timedelta(hours=1))
    assert tasks.start_due() == 0
    Campaign.objects.filter(pk=campaign.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    assert tasks.start_due() == 1
    campaign.refresh_from_db()
    assert campaign.status == "sending" and campaign.recipient_count == 5 and campaign.started_at
    assert list(CampaignLink.objects.filter(campaign=campaign).values_list("url", flat=True)) == [
        "https://example.com/x"
    ]
    assert tasks.start_due() == 0  # started once


def test_backoff_grows_exponentially_with_jitter(settings):
    settings.SEND_RETRY_BASE_SECONDS = 60
    first = [sending.backoff_seconds(1) for _ in range(200)]
    third = [sending.backoff_seconds(3) for _ in range(200)]
    assert min(first) >= 30 and max(first) <= 90 and len(set(first)) > 100
    assert min(third) >= 120 and max(third) <= 360
