"""Report pages: figures, chart, recipients, CSV export, dashboard, comparison, and tenancy."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import services
from campaigns.models import Delivery
from tests.analytics.helpers import click, drain, open_, sent_campaign
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def report(team, settings):
    settings.ANALYTICS_LEDGER_SETTLE_SECONDS = 0
    settings.ANALYTICS_REPORT_CACHE_SECONDS = 0
    campaign, deliveries = sent_campaign(workspace=team.a, recipients=4, name="Spring sale")
    a, b, c, d = deliveries
    Delivery.objects.filter(pk=d.pk).update(
        status="bounced",
        sent_at=None,
        smtp_code=550,
        smtp_response="550 5.1.1 <x>: user unknown",
        email="=HYPERLINK(1)@x.org",
    )
    open_(a)
    open_(a)
    open_(b, ua="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148")
    click(a, 0)
    click(b, 2)
    drain()
    services.ledger_sync()
    return campaign, deliveries


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">([^<]*)<', html)
    return match.group(1).strip() if match else ""


def test_the_report_shows_every_figure_and_draws_the_chart(alice_client, report):
    campaign, _ = report
    response = alice_client.get(f"/analytics/campaigns/{campaign.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    expected = {
        "sent": "3",
        "delivered": "3",
        "bounced": "1",
        "unique_opens": "2",
        "opens": "3",
        "unique_clicks": "2",
        "clicks": "2",
        "complained": "0",
        "open_rate": "66.67% open rate",
        "click_rate": "66.67% click rate",
        "bounce_rate": "25.00%",
    }
    assert {name: figure(html, name) for name in expected} == expected
    assert 'data-testid="engagement-chart"' in html and "<polyline" in html
    assert "Unique opens" in html and "people per hour" in html  # legend and axis unit
    assert "5.1.1 Mailbox does not exist" in html
    assert "Safari" in html and "Mobile" in html
    assert "https://shop.example.com/sale" in html


def test_the_report_reads_only_rollups(alice_client, report):
    campaign, _ = report
    alice_client.get(f"/analytics/campaigns/{campaign.pk}/")
    with CaptureQueriesContext(connection) as queries:
        assert alice_client.get(f"/analytics/campaigns/{campaign.pk}/").status_code == 200
    sql = " ".join(q["sql"] for q in queries)
    assert "analytics_event" not in sql and "campaigns_delivery" not in sql
    assert len(queries) <= 12


def test_recipients_per_outcome_and_csv_export_neutralise_formulas(alice_client, report):
    campaign, (a, b, c, d) = report
    page = alice_client.get(f"/analytics/campaigns/{campaign.pk}/recipients/opened/")
    assert page.status_code == 200
    assert a.email in page.content.decode() and c.email not in page.content.decode()
    response = alice_client.get(f"/analytics/campaigns/{campaign.pk}/recipients/bounced.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["email", "outcome", "at", "detail"]
    assert rows[1][0] == "'=HYPERLINK(1)@x.org"
    assert rows[1][3] == "550 5.1.1 <x>: user unknown"
    clicked = alice_client.get(f"/analytics/campaigns/{campaign.pk}/recipients/clicked.csv")
    emails = {row[0] for row in csv.reader(io.StringIO(b"".join(clicked.streaming_content).decode()))}
    assert emails == {"email", a.email, b.email}
    assert alice_client.get(f"/analytics/campaigns/{campaign.pk}/recipients/nonsense/").status_code == 404


def test_recipients_paginate(alice_client, team, settings):
    campaign, deliveries = sent_campaign(workspace=team.a, recipients=55)
    first = alice_client.get(f"/analytics/campaigns/{campaign.pk}/recipients/delivered/").content.decode()
    assert first.count("@example.org</td>") == 50
    next_url = re.search(r'href="([^"]+after=\d+)"', first).group(1).replace("&amp;", "&")
    second = alice_client.get(next_url).content.decode()
    assert second.count("@example.org</td>") == 5 and "Next page" not in second


def test_dashboard_shows_recent_campaigns_and_list_health(alice_client, report, team):
    services.audience_stats_refresh()
    response = alice_client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Spring sale" in html and "Acme" in html
    # 1 bounce of 4 final verdicts: far over the 5% bounce limit.
    assert 'data-testid="bounce-health"' in html and "health-over" in html
    assert "Bounces are over" in html


def test_dashboard_warns_as_complaints_approach_the_limit(alice_client, team, settings):
    settings.ANALYTICS_LEDGER_SETTLE_SECONDS = 0
    campaign, deliveries = sent_campaign(workspace=team.a, recipients=400)
    Delivery.objects.filter(pk=deliveries[0].pk).update(status="complained")  # 1 / 400 = 0.25%
    services.ledger_sync()
    html = client_for(alice_client, team.alice).get("/").content.decode()
    assert "approaching the 0.3% limit" in html


def test_comparison_shows_the_chosen_campaigns_only_from_the_workspace(alice_client, report, team):
    campaign, _ = report
    other, _ = sent_campaign(workspace=team.a, recipients=1, name="Autumn news")
    foreign, _ = sent_campaign(workspace=team.b, recipients=1, name="Globex secret")
    response = alice_client.get(f"/analytics/compare/?c={campaign.pk}&c={other.pk}&c={foreign.pk}&c=x")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Spring sale" in html and "Autumn news" in html and "Globex secret" not in html


def test_empty_states(alice_client, team):
    assert "Nothing sent yet" in alice_client.get("/").content.decode()
    assert "No data yet" in alice_client.get("/analytics/").content.decode()
    campaign, _ = sent_campaign(workspace=team.a, recipients=1)
    assert "No opens or clicks yet" in alice_client.get(f"/analytics/campaigns/{campaign.pk}/").content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/analytics/campaigns/{id}/",
        "/analytics/campaigns/{id}/recipients/opened/",
        "/analytics/campaigns/{id}/recipients/bounced.csv",
    ],
)
def test_charlie_cannot_see_another_workspaces_report(charlie_client, report, path):
    campaign, _ = report
    assert charlie_client.get(path.format(id=campaign.pk)).status_code == 404


def test_charlie_sees_only_his_own_workspace_on_the_dashboard_and_lists(charlie_client, report):
    assert "Spring sale" not in charlie_client.get("/").content.decode()
    assert "Spring sale" not in charlie_client.get("/analytics/").content.decode()
    campaign, _ = report
    assert "Spring sale" not in charlie_client.get(f"/analytics/compare/?c={campaign.pk}").content.decode()


def test_a_viewer_can_read_reports(client, team, report):
    campaign, _ = report
    assert client_for(client, team.victor).get(f"/analytics/campaigns/{campaign.pk}/").status_code == 200


def test_report_pages_need_sign_in(client, report):
    campaign, _ = report
    assert client.get(f"/analytics/campaigns/{campaign.pk}/").status_code == 302
    assert client.get("/").status_code == 302


def test_subscriber_growth_is_counted_per_day_and_charted(alice_client, team):
    from datetime import timedelta

    from django.utils import timezone

    from analytics.models import WorkspaceDailyStat
    from subscribers.models import Subscriber
    from tests.factories import SubscriberFactory

    now = timezone.now()
    for days_ago, count in ((3, 4), (1, 2), (0, 1)):
        for _ in range(count):
            subscriber = SubscriberFactory(workspace=team.a)
            Subscriber.objects.filter(pk=subscriber.pk).update(created_at=now - timedelta(days=days_ago))
    leaver = SubscriberFactory(workspace=team.a)
    Subscriber.objects.filter(pk=leaver.pk).update(
        created_at=now - timedelta(days=3), status="unsubscribed", status_changed_at=now - timedelta(days=1)
    )
    SubscriberFactory(workspace=team.b)  # another workspace's growth stays its own
    services.audience_stats_refresh()
    stats = {
        (now.date() - s.day).days: (s.subscribers, s.joined, s.left)
        for s in WorkspaceDailyStat.objects.filter(workspace=team.a)
    }
    assert stats[4] == (0, 0, 0)
    assert stats[3] == (5, 5, 0)
    assert stats[2] == (5, 0, 0)
    assert stats[1] == (6, 2, 1)
    assert stats[0] == (7, 1, 0)
    html = alice_client.get("/").content.decode()
    assert 'data-testid="growth-chart"' in html and "Active subscribers" in html
    assert re.search(r'data-testid="subscriber-count">7<', html)
