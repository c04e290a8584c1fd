"""The "view in browser" link of a campaign message: the recipient's own copy, by its signed token."""

import pytest
from django.core import signing

from campaigns.lib import tracking
from campaigns.models import Delivery
from tests.factories import CampaignFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery(team):
    campaign = CampaignFactory(
        workspace=team.a,
        status="sending",
        html='<p>Hi {{ subscriber.name }}, read <a href="https://example.com/news">the news</a>.</p>'
        '<p><a href="{{ view_in_browser_url }}">View in your browser</a></p>',
    )
    subscriber = SubscriberFactory(workspace=team.a, email="ann@example.org", name="Ann Example")
    return Delivery.objects.create(
        workspace=team.a, campaign=campaign, subscriber=subscriber, email=subscriber.email, status="sent"
    )


def token_for(delivery):
    return tracking.make_delivery_token(
        workspace_id=delivery.workspace_id, campaign_id=delivery.campaign_id, delivery_id=delivery.id
    )


def test_the_link_shows_the_recipients_own_message_with_tracked_links(client, delivery):
    response = client.get(f"/t/v/{token_for(delivery)}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Hi Ann Example" in page
    assert f"/t/c/{token_for(delivery)}/0" in page and 'href="https://example.com/news"' not in page
    # No open pixel: reading the web copy is not opening the email.
    assert "/t/o/" not in page
    # The marketer's HTML runs sandboxed, never with this site's origin.
    assert response["Content-Security-Policy"].startswith("sandbox")


def test_altered_or_foreign_tokens_show_nothing(client, delivery, team):
    token = token_for(delivery)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    other_workspace = tracking.make_delivery_token(
        workspace_id=team.b.id, campaign_id=delivery.campaign_id, delivery_id=delivery.id
    )
    with_other_key = signing.Signer(key="another-key").sign(token)
    for candidate in [altered, token[:10], other_workspace, with_other_key, "not-a-token"]:
        assert client.get(f"/t/v/{candidate}").status_code == 404, candidate


def test_a_deleted_delivery_shows_nothing(client, delivery):
    token = token_for(delivery)
    delivery.delete()
    assert client.get(f"/t/v/{token}").status_code == 404
