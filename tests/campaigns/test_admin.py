"""The Django admin: platform default relays (no workspace), campaigns, the ledger, transactional mail."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Relay, TransactionalMessage
from tests.factories import CampaignFactory, RelayFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model", ["relay", "campaign", "delivery", "template", "sender", "sendingdomain", "transactionalmessage"]
)
def test_admin_changelists_load_and_search(admin_client, team, model):
    RelayFactory(workspace=None, name="Platform relay")
    CampaignFactory(workspace=team.a)
    url = reverse(f"admin:campaigns_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "acme"}).status_code == 200


def test_an_admin_adds_a_platform_default_relay_with_an_encrypted_password(admin_client):
    response = admin_client.post(
        reverse("admin:campaigns_relay_add"),
        {
            "workspace": "",
            "name": "Platform SES",
            "is_active": "on",
            "host": "email-smtp.example.com",
            "port": 587,
            "tls_mode": "starttls",
            "username": "AKIA",
            "password": "platform-secret",
            "timeout_seconds": 15,
            "priority": 10,
            "weight": 1,
            "max_connections": 8,
        },
    )
    assert response.status_code == 302, response.content[:2000]
    relay = Relay.objects.get(name="Platform SES")
    assert relay.workspace_id is None and relay.is_platform_default and relay.password == "platform-secret"
    page = admin_client.get(reverse("admin:campaigns_relay_changelist"))
    assert b"Platform default" in page.content and b"platform-secret" not in page.content


def test_admin_actions_use_the_lifecycle_services(admin_client, team):
    campaign = CampaignFactory(workspace=team.a, status="sending")
    draft = CampaignFactory(workspace=team.a)
    admin_client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "pause", "_selected_action": [campaign.pk, draft.pk]},
    )
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert Campaign.objects.get(pk=draft.pk).status == "draft"


def test_an_admin_retries_deferred_transactional_messages_now(admin_client, team):
    later = timezone.now() + timedelta(hours=2)
    deferred = TransactionalMessage.objects.create(
        workspace=team.a, to_email="a@example.org", status="deferred", next_attempt_at=later, payload=b"x"
    )
    sent = TransactionalMessage.objects.create(workspace=team.a, to_email="b@example.org", status="sent")
    page = admin_client.get(reverse("admin:campaigns_transactionalmessage_change", args=[deferred.pk]))
    assert page.status_code == 200 and b"a@example.org" in page.content
    response = admin_client.post(
        reverse("admin:campaigns_transactionalmessage_changelist"),
        {"action": "retry_now", "_selected_action": [deferred.pk, sent.pk]},
        follow=True,
    )
    assert b"1 deferred messages will be retried" in response.content
    deferred.refresh_from_db()
    sent.refresh_from_db()
    assert deferred.next_attempt_at <= timezone.now() and sent.next_attempt_at is None
