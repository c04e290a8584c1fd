"""Bounce and complaint intake: the ledger, counters, suppression, the mailbox reader, the auto-pause."""

import pytest
from django.core.management import call_command

from campaigns import mailbox as inbound
from campaigns.bounces import (
    bounce_intake,
    campaign_rates,
    delivery_record_bounce,
    delivery_record_complaint,
)
from campaigns.lib.dsn import BounceReport, parse_bounce
from campaigns.models import Campaign, Delivery
from common.smtp_sink import Store
from subscribers.models import Subscriber, Suppression
from tests.campaigns.bounce_helpers import arf_for, delivery_of, dsn_for, sent_campaign, token_of
from tests.campaigns.helpers import wait_for
from tests.mail import outbox
from tests.workers import running_worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(team):
    return sent_campaign(workspace=team.a, count=5)


def reload(obj):
    obj.refresh_from_db()
    return obj


def subscriber_status(workspace, email):
    return Subscriber.objects.get(workspace=workspace, email=email).status


def suppressed(workspace, email):
    return Suppression.objects.filter(workspace=workspace, value=email).exists()


def test_a_hard_bounce_updates_the_ledger_counters_and_subscriber(campaign):
    delivery = delivery_of(campaign)
    assert delivery_record_bounce(delivery_id=delivery.pk, hard=True, detail="550 5.1.1 no such user") is True
    delivery = reload(delivery)
    assert delivery.status == Delivery.Status.BOUNCED
    assert delivery.bounced_at is not None
    assert "no such user" in delivery.smtp_response
    campaign = reload(campaign)
    assert (campaign.sent_count, campaign.bounced_count) == (4, 1)
    assert subscriber_status(campaign.workspace, delivery.email) == Subscriber.Status.BOUNCED
    assert suppressed(campaign.workspace, delivery.email)


def test_the_same_bounce_twice_counts_once(campaign):
    delivery = delivery_of(campaign)
    delivery_record_bounce(delivery_id=delivery.pk, hard=True, detail="550")
    assert delivery_record_bounce(delivery_id=delivery.pk, hard=True, detail="550") is False
    campaign = reload(campaign)
    assert (campaign.sent_count, campaign.bounced_count) == (4, 1)
    assert Suppression.objects.filter(workspace=campaign.workspace, value=delivery.email).count() == 1


def test_a_soft_bounce_only_notes_the_answer(campaign):
    delivery = delivery_of(campaign)
    assert delivery_record_bounce(delivery_id=delivery.pk, hard=False, detail="452 4.2.2 mailbox full") is True
    assert delivery_record_bounce(delivery_id=delivery.pk, hard=False, detail="452 4.2.2 mailbox full") is False
    delivery = reload(delivery)
    assert delivery.status == Delivery.Status.SENT
    assert delivery.smtp_response == "Soft bounce: 452 4.2.2 mailbox full"
    assert reload(campaign).bounced_count == 0
    assert subscriber_status(campaign.workspace, delivery.email) == Subscriber.Status.ACTIVE


def test_a_complaint_updates_the_ledger_counters_and_subscriber_once(campaign):
    delivery = delivery_of(campaign)
    assert delivery_record_complaint(delivery_id=delivery.pk, detail="abuse") is True
    assert delivery_record_complaint(delivery_id=delivery.pk, detail="abuse") is False
    assert reload(delivery).status == Delivery.Status.COMPLAINED
    campaign = reload(campaign)
    assert (campaign.sent_count, campaign.complained_count) == (5, 1)  # it was delivered: still sent
    assert subscriber_status(campaign.workspace, delivery.email) == Subscriber.Status.COMPLAINED
    assert suppressed(campaign.workspace, delivery.email)


def test_a_bounce_of_a_delivery_that_failed_at_send_time_moves_the_failed_count(campaign):
    delivery = delivery_of(campaign)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=4, failed_count=1)
    delivery_record_bounce(delivery_id=delivery.pk, hard=True, detail="550")
    campaign = reload(campaign)
    assert (campaign.sent_count, campaign.failed_count, campaign.bounced_count) == (4, 0, 1)


def report(**fields):
    return BounceReport(**{"kind": "bounce", "recipient": "", "hard": True, "diagnostic": "550", **fields})


def test_intake_finds_the_delivery_by_token_message_id_or_address(campaign):
    first, second, third = Delivery.objects.filter(campaign=campaign).order_by("id")[:3]
    assert bounce_intake(report=report(delivery_token=token_of(first))).delivery_id == first.pk
    assert bounce_intake(report=report(original_message_id=second.message_id)).delivery_id == second.pk
    assert bounce_intake(report=report(recipient=third.email.upper())).delivery_id == third.pk
    assert reload(campaign).bounced_count == 3


def test_intake_ignores_a_forged_token_and_unknown_addresses(campaign):
    token = token_of(delivery_of(campaign))
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert bounce_intake(report=report(delivery_token=forged)).matched is False
    assert bounce_intake(report=report(recipient="stranger@example.org")).matched is False
    assert reload(campaign).bounced_count == 0


def test_a_workspace_scoped_intake_never_touches_another_workspace(campaign, team):
    delivery = delivery_of(campaign)
    result = bounce_intake(
        report=report(delivery_token=token_of(delivery), recipient=delivery.email), workspace_id=team.b.pk
    )
    assert result.delivery_id is None
    assert reload(delivery).status == Delivery.Status.SENT
    assert subscriber_status(team.a, delivery.email) == Subscriber.Status.ACTIVE
    assert not suppressed(team.a, delivery.email)


def test_the_bounce_mailbox_is_read_once(campaign, tmp_path):
    first, second, third = Delivery.objects.filter(campaign=campaign).order_by("id")[:3]
    mailbox = Store(tmp_path / "bounces")
    mailbox.save("", ["bounces@sender.test"], dsn_for(first))
    mailbox.save("", ["bounces@sender.test"], dsn_for(first))  # the same report delivered twice
    mailbox.save("", ["bounces@sender.test"], dsn_for(second, status="4.2.2", action="delayed"))
    mailbox.save("", ["abuse@sender.test"], arf_for(third))
    mailbox.save("", ["bounces@sender.test"], b"From: someone@example.org\r\nSubject: Out of office\r\n\r\nAway.\r\n")

    result = inbound.mailbox_process(directory=str(mailbox.directory))

    assert (result.read, result.recorded, result.duplicates, result.unsubscribed, result.ignored) == (5, 3, 1, 0, 1)
    assert mailbox.count() == 0
    assert len(list((mailbox.directory / "processed").glob("*.eml"))) == 4
    assert len(list((mailbox.directory / "ignored").glob("*.eml"))) == 1
    assert reload(first).status == Delivery.Status.BOUNCED
    assert reload(second).status == Delivery.Status.SENT
    assert reload(third).status == Delivery.Status.COMPLAINED
    campaign = reload(campaign)
    assert (campaign.bounced_count, campaign.complained_count) == (1, 1)
    assert inbound.mailbox_process(directory=str(mailbox.directory)).read == 0


def test_the_mailbox_command(campaign, tmp_path, settings, capsys):
    mailbox = Store(tmp_path / "bounces")
    mailbox.save("", ["bounces@sender.test"], dsn_for(delivery_of(campaign)))
    settings.BOUNCE_MAILBOX_DIR = str(mailbox.directory)
    call_command("read_bounce_mailbox")
    assert "Read 1 messages: 1 recorded" in capsys.readouterr().out
    assert reload(campaign).bounced_count == 1


def test_a_message_a_dead_reader_left_behind_is_read_again(campaign, tmp_path):
    import os
    import time

    mailbox = Store(tmp_path / "bounces")
    (mailbox.directory / "processing").mkdir()
    left = mailbox.directory / "processing" / "0001-left.eml"
    left.write_bytes(dsn_for(delivery_of(campaign)))
    old = time.time() - inbound.MAILBOX_STALE_SECONDS - 5
    os.utime(left, (old, old))
    assert inbound.mailbox_process(directory=str(mailbox.directory)).recorded == 1


def test_the_dsn_helper_reads_back():
    # The samples used above are real reports to the parser, not something only these tests accept.
    class Fake:
        email, message_id, workspace_id, campaign_id, pk = "a@example.org", "<herald.1.2@x.test>", 1, 1, 2

    parsed = parse_bounce(dsn_for(Fake))
    assert (parsed.hard, parsed.recipient, parsed.original_message_id) == (True, "a@example.org", "<herald.1.2@x.test>")


# --- The automatic pause ---------------------------------------------------------------------


@pytest.fixture
def big_campaign(team):
    return sent_campaign(workspace=team.a, count=1000, prefix="big")


def bounce_first(campaign, count, *, complaint=False):
    for delivery in Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENT).order_by("id")[:count]:
        if complaint:
            delivery_record_complaint(delivery_id=delivery.pk, detail="abuse")
        else:
            delivery_record_bounce(delivery_id=delivery.pk, hard=True, detail="550 5.1.1")


def test_five_percent_hard_bounces_is_allowed_and_one_more_pauses(big_campaign):
    bounce_first(big_campaign, 50)
    campaign = reload(big_campaign)
    assert campaign.status == Campaign.Status.SENDING
    assert campaign_rates(campaign=campaign).hard_bounce_rate == 0.05
    bounce_first(big_campaign, 1)
    campaign = reload(big_campaign)
    assert campaign.status == Campaign.Status.PAUSED
    assert "51 of 1,000 messages hard-bounced (5.1%)" in campaign.pause_reason


def test_point_three_percent_complaints_is_allowed_and_one_more_pauses(big_campaign):
    bounce_first(big_campaign, 3, complaint=True)
    assert reload(big_campaign).status == Campaign.Status.SENDING
    bounce_first(big_campaign, 1, complaint=True)
    campaign = reload(big_campaign)
    assert campaign.status == Campaign.Status.PAUSED
    assert "4 of 1,000 recipients reported the message as spam" in campaign.pause_reason


def test_no_pause_before_a_thousand_deliveries(team):
    campaign = sent_campaign(workspace=team.a, count=100, prefix="small")
    bounce_first(campaign, 30)
    assert reload(campaign).status == Campaign.Status.SENDING


def test_a_resumed_campaign_is_judged_again_only_after_another_thousand(big_campaign):
    from campaigns.services import campaign_resume

    bounce_first(big_campaign, 51)
    campaign_resume(campaign=reload(big_campaign))
    bounce_first(big_campaign, 5)
    assert reload(big_campaign).status == Campaign.Status.SENDING


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_owners_are_emailed_when_a_campaign_pauses_itself(team, smtp_sink):
    campaign = sent_campaign(workspace=team.a, count=1000, prefix="mailed")
    with running_worker(queues=("default",)):
        bounce_first(campaign, 51)
        mails = wait_for(lambda: [m for m in outbox() if "Campaign paused" in m.subject], timeout=30, what="email")
    assert reload(campaign).status == Campaign.Status.PAUSED
    assert len(mails) == 1
    assert mails[0].to == ["alice@acme.test"]  # the owner; not bob (editor) nor victor (viewer)
    assert campaign.name in mails[0].subject
    assert "51 of 1,000 messages hard-bounced" in mails[0].body


def test_the_beat_task_reads_the_mailbox(team, tmp_path, settings):
    from campaigns.bounce_tasks import read_bounce_mailbox

    mailbox = Store(tmp_path / "bounces")
    campaign = sent_campaign(workspace=team.a, count=3, prefix="beat")
    mailbox.save("", ["bounces@sender.test"], dsn_for(delivery_of(campaign)))
    settings.BOUNCE_MAILBOX_DIR = str(mailbox.directory)
    result = read_bounce_mailbox()
    assert (result["read"], result["recorded"], result["paused"]) == (1, 1, 0)
    assert reload(campaign).bounced_count == 1


def test_the_beat_task_pauses_a_campaign_whose_relays_bounced_too_much(team, settings):
    from campaigns.bounce_tasks import read_bounce_mailbox

    campaign = sent_campaign(workspace=team.a, count=1000, prefix="sync")
    healthy = sent_campaign(workspace=team.a, count=1000, prefix="fine")
    # Bounces the relay answered at send time: the pipeline counted them; nobody judged them yet.
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=940, bounced_count=60)
    settings.BOUNCE_MAILBOX_DIR = ""
    assert read_bounce_mailbox() == {"paused": 1}
    assert reload(campaign).status == Campaign.Status.PAUSED
    assert "60 of 1,000 messages hard-bounced" in reload(campaign).pause_reason
    assert reload(healthy).status == Campaign.Status.SENDING
