"""The analytics API: campaign statistics, events with a cursor, subscriber activity; tenancy."""

from __future__ import annotations

import pytest

from accounts.models import ApiKey
from accounts.services import api_key_create
from analytics import services
from tests.analytics.helpers import click, drain, open_, sent_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(team):
    _, read_a = api_key_create(workspace=team.a, name="A", scope=ApiKey.Scope.READ)
    _, key_b = api_key_create(workspace=team.b, name="B", scope=ApiKey.Scope.WRITE)
    return read_a, key_b


@pytest.fixture
def tracked(team, settings):
    settings.ANALYTICS_LEDGER_SETTLE_SECONDS = 0
    campaign, deliveries = sent_campaign(workspace=team.a, recipients=3)
    a, b, c = deliveries
    open_(a)
    open_(b)
    open_(b)
    click(a, 1)
    drain()
    services.ledger_sync()
    return campaign, deliveries


def get(client, path, key, **params):
    return client.get(path, params, HTTP_AUTHORIZATION=f"Bearer {key}")


def test_campaign_statistics(client, keys, tracked):
    campaign, _ = tracked
    body = get(client, f"/api/analytics/campaigns/{campaign.pk}", keys[0]).json()
    assert {
        k: body["totals"][k] for k in ("sent", "delivered", "opens", "unique_opens", "clicks", "unique_clicks")
    } == {
        "sent": 3,
        "delivered": 3,
        "opens": 3,
        "unique_opens": 2,
        "clicks": 1,
        "unique_clicks": 1,
    }
    assert body["rates"]["open_rate"] == round(2 / 3, 4)
    assert body["links"] == [{"position": 1, "url": "https://example.com/b?x=1", "clicks": 1, "unique_clicks": 1}]


def test_events_are_filtered_and_paged_with_a_cursor(client, keys, tracked):
    campaign, _ = tracked
    first = get(client, "/api/analytics/events", keys[0], campaign_id=campaign.pk, type="opened", limit=2).json()
    assert [e["type"] for e in first["items"]] == ["opened", "opened"] and first["next_cursor"]
    rest = get(
        client, "/api/analytics/events", keys[0], campaign_id=campaign.pk, type="opened", cursor=first["next_cursor"]
    ).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    everything = get(client, "/api/analytics/events", keys[0], limit=500).json()["items"]
    assert sorted(e["type"] for e in everything) == ["clicked", "opened", "opened", "opened", "sent", "sent", "sent"]
    assert get(client, "/api/analytics/events", keys[0], type="nope").status_code == 422
    assert get(client, "/api/analytics/events", keys[0], limit=0).status_code == 422
    assert get(client, "/api/analytics/events", keys[0], cursor="abc").status_code == 422


def test_subscriber_activity(client, keys, tracked):
    _, (a, _, _) = tracked
    items = get(client, f"/api/analytics/subscribers/{a.subscriber_id}/activity", keys[0]).json()["items"]
    assert sorted(e["type"] for e in items) == ["clicked", "opened", "sent"]


def test_another_workspaces_key_gets_404_and_sees_no_events(client, keys, tracked):
    campaign, (a, _, _) = tracked
    key_b = keys[1]
    assert get(client, f"/api/analytics/campaigns/{campaign.pk}", key_b).status_code == 404
    assert get(client, "/api/analytics/events", key_b, campaign_id=campaign.pk).status_code == 404
    assert get(client, "/api/analytics/events", key_b).json()["items"] == []
    assert get(client, f"/api/analytics/subscribers/{a.subscriber_id}/activity", key_b).status_code == 404


def test_the_api_needs_a_key(client, tracked):
    campaign, _ = tracked
    assert client.get(f"/api/analytics/campaigns/{campaign.pk}").status_code == 401
    assert client.get("/api/analytics/events").status_code == 401
