"""A campaign sent through the real pipeline (worker, SMTP sink), then known opens, clicks, bounces and
unsubscribes: every figure on the report and in the API is what happened."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client

from accounts.models import ApiKey
from accounts.services import api_key_create
from analytics import tasks as analytics_tasks
from analytics.models import CampaignRollup
from campaigns import bounces, services, tasks
from campaigns.models import Campaign, Delivery
from common.smtp_sink import SmtpSink
from subscribers.services import subscriber_unsubscribe
from tests.analytics.helpers import BROWSER
from tests.campaigns.helpers import FAST_WORKER_ENV, campaign_status, make_audience, relay_for, wait_for
from tests.conftest import client_for
from tests.factories import CampaignFactory
from tests.workers import running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ENV = {**FAST_WORKER_ENV, "ANALYTICS_LEDGER_SETTLE_SECONDS": "0", "ANALYTICS_SCANNER_SECONDS": "0"}


@pytest.fixture
def sink(tmp_path):
    sink = SmtpSink(tmp_path / "sink").start()
    yield sink
    sink.stop()


def tracked_links(sink) -> dict[str, tuple[str, list[str]]]:
    """recipient -> (open pixel path, click paths in order) from the messages the sink received."""
    found = {}
    for message in sink.messages():
        html = message.get_body(("html",)).get_content()
        pixel = re.search(r'src="https?://[^/"]+(/t/o/[^"]+\.gif)"', html).group(1)
        clicks = re.findall(r'href="https?://[^/"]+(/t/c/[^"]+)"', html)
        found[str(message["X-Sink-Rcpt-To"])] = (pixel, clicks)
    return found


def test_every_figure_on_the_report_and_in_the_api_matches_what_happened(team, sink, settings, client):
    settings.ANALYTICS_LEDGER_SETTLE_SECONDS = 0
    settings.ANALYTICS_SCANNER_SECONDS = 0
    settings.ANALYTICS_REPORT_CACHE_SECONDS = 0
    audience = make_audience(workspace=team.a, count=20)
    relay_for(sink, workspace=team.a, name="Sink")
    campaign = CampaignFactory(
        workspace=team.a,
        name="Known audience",
        html='<p>Hi {{ subscriber.name }}: <a href="https://example.com/one">one</a>, '
        '<a href="https://example.com/two">two</a>.</p>',
    )
    with running_worker(queues=("send", "analytics"), concurrency=2, extra_env=ENV):
        campaign.lists.set([audience])
        services.campaign_schedule(campaign=campaign)
        services.campaign_start(campaign_id=campaign.pk)
        wait_for(
            lambda: campaign_status(campaign) == "sent", timeout=90, what="the campaign to finish", tick=tasks.sweep
        )
        links = tracked_links(sink)
        assert len(links) == 20
        people = sorted(links)
        browser = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="198.51.100.7")
        # 8 people open (two of them twice), 5 of them click: 3 on link one, 2 on link two, one clicks twice.
        for person in people[:8]:
            assert browser.get(links[person][0]).status_code == 200
        for person in people[:2]:
            browser.get(links[person][0])
        for person in people[:3]:
            assert browser.get(links[person][1][0])["Location"] == "https://example.com/one"
        for person in people[3:5]:
            assert browser.get(links[person][1][1])["Location"] == "https://example.com/two"
        time.sleep(1.1)  # a person's second click, not a scanner's sweep
        browser.get(links[people[0]][1][0])
        # One Apple privacy-proxy fetch: counted apart.
        Client(HTTP_USER_AGENT="Mozilla/5.0", REMOTE_ADDR="17.1.2.3").get(links[people[10]][0])
        # 2 hard bounces and 1 complaint reported afterwards, 3 unsubscribes.
        by_email = {d.email: d for d in Delivery.objects.filter(campaign=campaign)}
        for person in people[15:17]:
            bounces.delivery_record_bounce(delivery_id=by_email[person].pk, hard=True, detail="550 5.1.1 user unknown")
        bounces.delivery_record_complaint(delivery_id=by_email[people[17]].pk, detail="abuse report")
        for person in people[5:8]:
            subscriber_unsubscribe(subscriber_id=by_email[person].subscriber_id, workspace_id=team.a.pk)
        time.sleep(0.05)

        def nudge():
            analytics_tasks.drain.delay()
            analytics_tasks.sync_ledger.delay()

        def caught_up():
            rollup = CampaignRollup.objects.filter(campaign=campaign).first()
            return rollup and rollup.clicks == 6 and rollup.unsubscribed == 3 and rollup.complained == 1

        wait_for(caught_up, timeout=60, interval=1.0, what="the analytics worker to catch up", tick=nudge)

    expected = {
        "sent": 20,
        "delivered": 18,
        "bounced": 2,
        "complained": 1,
        "unsubscribed": 3,
        "failed": 0,
        "opens": 10,
        "unique_opens": 8,
        "clicks": 6,
        "unique_clicks": 5,
        "bot_opens": 1,
        "bot_clicks": 0,
    }
    html = client_for(client, team.alice).get(f"/analytics/campaigns/{campaign.pk}/").content.decode()
    shown = {name: int(re.search(rf'data-figure="{name}">(\d+)<', html).group(1)) for name in expected}
    assert shown == expected
    assert re.search(r'data-figure="open_rate">([^<]*)<', html).group(1).startswith("44.44%")  # 8 / 18
    assert re.search(r'data-figure="click_rate">([^<]*)<', html).group(1).startswith("27.78%")  # 5 / 18

    _, secret = api_key_create(workspace=team.a, name="Reports", scope=ApiKey.Scope.READ)
    body = Client().get(f"/api/analytics/campaigns/{campaign.pk}", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert {name: body["totals"][name] for name in expected} == expected
    assert body["rates"]["open_rate"] == round(8 / 18, 4)
    assert body["rates"]["complaint_rate"] == round(1 / 18, 4)
    assert {(link["position"], link["clicks"], link["unique_clicks"]) for link in body["links"]} == {
        (0, 4, 3),
        (1, 2, 2),
    }
    assert body["outcomes"] == [
        {"outcome": "bounced", "reason": "5.1.1 Mailbox does not exist", "count": 2},
        {"outcome": "complained", "reason": "Spam complaint (feedback report)", "count": 1},
    ]
    assert Campaign.objects.get(pk=campaign.pk).status == "sent"
