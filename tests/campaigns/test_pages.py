"""Campaign and relay pages: what they do, who may use them (404 outside the workspace, 403 for viewers)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.encryption import decrypt
from campaigns.models import Campaign, Relay
from tests.conftest import client_for
from tests.factories import (
    CampaignFactory,
    ListMembershipFactory,
    MailingListFactory,
    RelayFactory,
    SenderFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(team):
    """A draft in workspace A that could be sent: a verified sender, a relay and one subscriber."""
    mailing_list = MailingListFactory(workspace=team.a, name="Readers")
    ListMembershipFactory(mailing_list=mailing_list)
    relay = RelayFactory(workspace=team.a, name="Primary")
    campaign = CampaignFactory(workspace=team.a, name="Spring news")
    campaign.lists.set([mailing_list])
    return campaign, mailing_list, relay


def campaign_urls(campaign_id: int) -> list[tuple[str, str, bool]]:
    """(method, url, is_write) for every page of one campaign."""
    urls = [
        ("get", reverse("campaigns:detail", args=[campaign_id]), False),
        ("get", reverse("campaigns:progress", args=[campaign_id]), False),
        ("get", reverse("campaigns:edit", args=[campaign_id]), True),
        ("post", reverse("campaigns:edit", args=[campaign_id]), True),
        ("post", reverse("campaigns:duplicate", args=[campaign_id]), True),
        ("get", reverse("campaigns:delete", args=[campaign_id]), True),
        ("post", reverse("campaigns:delete", args=[campaign_id]), True),
    ]
    for action in ("schedule", "pause", "resume", "cancel", "unschedule"):
        urls += [
            ("get", reverse("campaigns:action", args=[campaign_id, action]), True),
            ("post", reverse("campaigns:action", args=[campaign_id, action]), True),
        ]
    return urls


def relay_urls(relay_id: int) -> list[tuple[str, str]]:
    return [
        ("get", reverse("campaigns:relay_edit", args=[relay_id])),
        ("post", reverse("campaigns:relay_edit", args=[relay_id])),
        ("post", reverse("campaigns:relay_test", args=[relay_id])),
        ("get", reverse("campaigns:relay_delete", args=[relay_id])),
        ("post", reverse("campaigns:relay_delete", args=[relay_id])),
    ]


def test_a_member_of_another_workspace_reaches_none_of_a_campaigns_pages(client, team, ready):
    campaign, _, relay = ready
    client_for(client, team.charlie)
    for method, url, _ in campaign_urls(campaign.pk):
        assert getattr(client, method)(url).status_code == 404, (method, url)
    for method, url in relay_urls(relay.pk):
        assert getattr(client, method)(url).status_code == 404, (method, url)
    listing = client.get(reverse("campaigns:list"))
    assert listing.status_code == 200 and "Spring news" not in listing.text
    assert Campaign.objects.filter(pk=campaign.pk, status="draft").exists()
    assert Relay.objects.filter(pk=relay.pk).exists()


def test_guessed_ids_answer_404(alice_client):
    for method, url, _ in campaign_urls(999999):
        assert getattr(alice_client, method)(url).status_code == 404, (method, url)
    for method, url in relay_urls(999999):
        assert getattr(alice_client, method)(url).status_code == 404, (method, url)


def test_a_viewer_can_look_but_not_change(client, team, ready):
    campaign, _, relay = ready
    client_for(client, team.victor)
    for method, url, is_write in campaign_urls(campaign.pk):
        expected = 403 if is_write else 200
        assert getattr(client, method)(url).status_code == expected, (method, url)
    assert client.get(reverse("campaigns:create")).status_code == 403
    assert client.post(reverse("campaigns:create"), {"name": "x", "subject": "y"}).status_code == 403
    assert Campaign.objects.filter(workspace=team.a).count() == 1


def test_only_owners_and_admins_manage_relays(client, team, ready):
    _, _, relay = ready
    for member in (team.victor, team.bob):
        client_for(client, member)
        assert client.get(reverse("campaigns:relays")).status_code == 403
        assert client.post(reverse("campaigns:relay_create"), {"name": "x"}).status_code == 403
        for method, url in relay_urls(relay.pk):
            assert getattr(client, method)(url).status_code == 403, (member, method, url)
    assert Relay.objects.filter(pk=relay.pk).exists()


def test_the_list_shows_status_and_progress_with_constant_queries(alice_client, team, django_assert_max_num_queries):
    for n in range(30):
        CampaignFactory(workspace=team.a, name=f"Campaign {n:02}", recipient_count=100, sent_count=n)
    with django_assert_max_num_queries(12):
        response = alice_client.get(reverse("campaigns:list"))
    assert response.status_code == 200
    assert "Campaign 29" in response.text and "Page 1 of 2" in response.text


def test_the_empty_list_invites_a_first_campaign(alice_client):
    response = alice_client.get(reverse("campaigns:list"))
    assert "No campaigns yet" in response.text and reverse("campaigns:create") in response.text


def test_the_list_leads_to_the_sending_setup(alice_client):
    page = alice_client.get(reverse("campaigns:list")).text
    for name in ("campaigns:senders", "campaigns:domains", "campaigns:relays"):
        assert f'href="{reverse(name)}"' in page, name


def test_creating_a_campaign_from_a_template_copies_its_content(alice_client, team):
    template = TemplateFactory(workspace=team.a, subject="Hi {{ subscriber.first_name }}", html="<p>Body</p>")
    sender = SenderFactory(workspace=team.a)
    mailing_list = MailingListFactory(workspace=team.a)
    response = alice_client.post(
        reverse("campaigns:create"),
        {
            "name": "From the template",
            "template": template.pk,
            "sender": sender.pk,
            "lists": [mailing_list.pk],
            "track_opens": "on",
        },
    )
    campaign = Campaign.objects.get(name="From the template")
    assert response.status_code == 302 and response["Location"] == reverse("campaigns:detail", args=[campaign.pk])
    assert (campaign.subject, campaign.html, campaign.template_id) == (template.subject, template.html, template.pk)
    assert list(campaign.lists.all()) == [mailing_list] and campaign.track_opens and not campaign.track_clicks
    template.html = "<p>Changed later</p>"
    template.save()
    campaign.refresh_from_db()
    assert campaign.html == "<p>Body</p>"


def test_bad_content_is_refused_with_a_reason_and_nothing_saved(alice_client, team):
    response = alice_client.post(
        reverse("campaigns:create"), {"name": "Broken", "subject": "Hi", "html": "<p>{{ subscriber.name </p>"}
    )
    assert response.status_code == 400
    assert "field-error" in response.text
    response = alice_client.post(
        reverse("campaigns:create"), {"name": "Escape", "subject": "Hi", "html": '{{ "".__class__ }}'}
    )
    assert response.status_code == 400
    assert not Campaign.objects.filter(workspace=team.a).exists()


def test_another_workspaces_list_or_sender_cannot_be_chosen(alice_client, team):
    foreign_list = MailingListFactory(workspace=team.b)
    foreign_sender = SenderFactory(workspace=team.b)
    response = alice_client.post(
        reverse("campaigns:create"),
        {
            "name": "Sneaky",
            "subject": "Hi",
            "html": "<p>x</p>",
            "lists": [foreign_list.pk],
            "sender": foreign_sender.pk,
        },
    )
    assert response.status_code == 400
    assert not Campaign.objects.filter(workspace=team.a).exists()


def test_editing_a_draft_saves_and_a_sent_campaign_cannot_be_edited(alice_client, team, ready):
    campaign, mailing_list, _ = ready
    response = alice_client.post(
        reverse("campaigns:edit", args=[campaign.pk]),
        {
            "name": "Renamed",
            "subject": "New subject",
            "html": "<p>new</p>",
            "sender": campaign.sender_id,
            "lists": [mailing_list.pk],
        },
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.subject) == ("Renamed", "New subject")
    Campaign.objects.filter(pk=campaign.pk).update(status="sent")
    response = alice_client.post(reverse("campaigns:edit", args=[campaign.pk]), {"name": "Again", "subject": "x"})
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).name == "Renamed"


@pytest.mark.parametrize(
    "breakage, reason",
    [
        ("unverified", "is not verified"),
        ("no_relay", "No SMTP relay"),
        ("no_audience", "audience is empty"),
    ],
)
def test_scheduling_is_refused_with_the_reason(alice_client, team, ready, breakage, reason):
    campaign, mailing_list, relay = ready
    if breakage == "unverified":
        campaign.sender.verified_at = None
        campaign.sender.save()
    elif breakage == "no_relay":
        relay.delete()
    else:
        mailing_list.memberships.update(status="unsubscribed")
    response = alice_client.post(reverse("campaigns:action", args=[campaign.pk, "schedule"]))
    assert response.status_code == 400
    assert reason in response.text
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_scheduling_for_later_then_back_to_draft(alice_client, ready):
    campaign, _, _ = ready
    later = (timezone.now() + timezone.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = alice_client.post(reverse("campaigns:action", args=[campaign.pk, "schedule"]), {"send_at": later})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "scheduled" and campaign.send_at > timezone.now()
    response = alice_client.post(reverse("campaigns:action", args=[campaign.pk, "unschedule"]))
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_the_confirmation_page_shows_the_audience_before_sending(alice_client, ready):
    campaign, _, _ = ready
    response = alice_client.get(reverse("campaigns:action", args=[campaign.pk, "schedule"]))
    assert response.status_code == 200
    assert "<strong>1</strong> subscriber" in response.text


def test_an_action_the_state_does_not_allow_says_why(alice_client, ready):
    campaign, _, _ = ready
    response = alice_client.post(reverse("campaigns:action", args=[campaign.pk, "pause"]), follow=True)
    assert "Only a campaign that is sending can be paused." in response.text
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_progress_json_reports_counts_rate_and_time_left(alice_client, ready):
    campaign, _, _ = ready
    Campaign.objects.filter(pk=campaign.pk).update(
        status="sending",
        recipient_count=1000,
        sent_count=400,
        failed_count=10,
        bounced_count=5,
        started_at=timezone.now() - timezone.timedelta(seconds=10),
    )
    data = alice_client.get(reverse("campaigns:progress", args=[campaign.pk])).json()
    assert (data["sent"], data["failed"], data["bounced"], data["remaining"]) == (400, 10, 5, 585)
    assert data["percent"] == 41.5
    assert 35 < data["rate_per_second"] < 45
    assert 10 < data["seconds_left"] < 20
    detail = alice_client.get(reverse("campaigns:detail", args=[campaign.pk]))
    assert 'data-progress-url="' in detail.text and "campaign_progress" in detail.text


def test_duplicating_makes_a_new_draft_with_the_same_audience(alice_client, team, ready):
    campaign, mailing_list, _ = ready
    Campaign.objects.filter(pk=campaign.pk).update(status="sent")
    response = alice_client.post(reverse("campaigns:duplicate", args=[campaign.pk]))
    copy = Campaign.objects.exclude(pk=campaign.pk).get(workspace=team.a)
    assert response["Location"] == reverse("campaigns:detail", args=[copy.pk])
    assert copy.status == "draft" and copy.name == "Copy of Spring news"
    assert list(copy.lists.all()) == [mailing_list] and copy.html == campaign.html


def test_cancelling_asks_first(alice_client, ready):
    campaign, _, _ = ready
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    page = alice_client.get(reverse("campaigns:action", args=[campaign.pk, "cancel"]))
    assert "cannot be undone" in page.text
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"
    alice_client.post(reverse("campaigns:action", args=[campaign.pk, "cancel"]))
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"


def test_relays_page_adds_edits_and_keeps_the_password_encrypted(alice_client, team, smtp_sink):
    response = alice_client.post(
        reverse("campaigns:relay_create"),
        {
            "name": "Mailgun",
            "host": "127.0.0.1",
            "port": 2525,
            "tls_mode": "none",
            "username": "apikey",
            "password": "s3cret",
            "priority": 10,
            "weight": 1,
            "max_connections": 4,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    relay = Relay.objects.get(workspace=team.a)
    assert relay.password == "s3cret"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM campaigns_relay WHERE id = %s", [relay.pk])
        stored = cursor.fetchone()[0]
    assert "s3cret" not in stored and decrypt(stored) == "s3cret"
    edit = {
        "name": "Mailgun EU",
        "host": "127.0.0.1",
        "port": 2525,
        "tls_mode": "none",
        "username": "apikey",
        "password": "",
        "priority": 20,
        "weight": 2,
        "max_connections": 4,
        "is_active": "on",
    }
    assert alice_client.post(reverse("campaigns:relay_edit", args=[relay.pk]), edit).status_code == 302
    relay.refresh_from_db()
    assert (relay.name, relay.priority, relay.password) == ("Mailgun EU", 20, "s3cret")
    listing = alice_client.get(reverse("campaigns:relays"))
    assert "Mailgun EU" in listing.text and "Closed (healthy)" in listing.text
    assert "s3cret" not in alice_client.get(reverse("campaigns:relay_edit", args=[relay.pk])).text


def test_a_bad_relay_form_is_refused(alice_client, team):
    response = alice_client.post(
        reverse("campaigns:relay_create"),
        {
            "name": "Bad",
            "host": "x",
            "port": 70000,
            "tls_mode": "none",
            "priority": 1,
            "weight": 0,
            "max_connections": 1,
        },
    )
    assert response.status_code == 400 and not Relay.objects.exists()


def test_testing_a_relay_reports_success_or_the_error(alice_client, team):
    import os

    from common.smtp_sink import SmtpSink

    with SmtpSink(os.environ["SMTP_SINK_DIR"] + "-relaytest") as sink:
        relay = RelayFactory(workspace=team.a, name="Sink", port=sink.port)
        page = alice_client.post(reverse("campaigns:relay_test", args=[relay.pk]), follow=True)
        assert "Connected and logged in" in page.text
        sink.set_behaviour("refuse")
        page = alice_client.post(reverse("campaigns:relay_test", args=[relay.pk]), follow=True)
        assert "refused" in page.text.lower()
