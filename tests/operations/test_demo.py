"""`manage.py seed_demo`: the demo workspace is ready to send its campaign, and seeding twice adds nothing."""

import pytest
from django.core.management import call_command

from accounts.models import Member, User, Workspace
from campaigns import sending, services
from campaigns.models import Campaign, Delivery, Relay, Template
from subscribers.models import ListMembership, Segment, Subscriber
from subscribers.segments import segment_q

pytestmark = pytest.mark.django_db


def test_seeding_twice_keeps_one_of_everything_and_refreshes_the_login():
    call_command("seed_demo")
    workspace = Workspace.objects.get(slug="demo")
    Template.objects.filter(workspace=workspace).update(subject="Changed by someone")
    User.objects.filter(email="demo@herald.test").update(password="!")
    call_command("seed_demo")

    assert Workspace.objects.filter(slug="demo").count() == 1
    user = User.objects.get(email="demo@herald.test")
    assert user.check_password("herald-demo-password") and user.is_staff
    assert Member.objects.get(user=user, workspace=workspace).role == Member.Role.OWNER
    assert Subscriber.objects.filter(workspace=workspace).count() == 250
    assert ListMembership.objects.filter(workspace=workspace).count() == 250
    assert Campaign.objects.filter(workspace=workspace).count() == 1
    assert Template.objects.get(workspace=workspace).subject == "Changed by someone"  # not overwritten


def test_the_demo_campaign_sends_to_every_subscriber_through_the_platforms_smtp_server(smtp_sink, settings):
    call_command("seed_demo")
    workspace = Workspace.objects.get(slug="demo")
    pro = Segment.objects.get(workspace=workspace)
    assert 0 < Subscriber.objects.filter(workspace=workspace).filter(segment_q(pro.rules)).count() < 250
    relay = Relay.objects.get(workspace=workspace)
    assert (relay.host, relay.port) == (settings.EMAIL_HOST, settings.EMAIL_PORT)

    campaign = Campaign.objects.get(workspace=workspace)
    services.campaign_schedule(campaign=campaign)  # refused if a sender, relay or recipient were missing
    services.campaign_start(campaign_id=campaign.pk)
    while sending.batch_send(campaign_id=campaign.pk).claimed:
        pass

    assert Delivery.objects.filter(campaign=campaign, status="sent").count() == 250
    assert smtp_sink.count() == 250
    message = smtp_sink.read(smtp_sink.names()[0])
    assert message["From"] == "Herald Demo <news@demo.herald.test>"
    assert message["Subject"].endswith(", your monthly news") and message["List-Unsubscribe"]
