"""A real gunicorn node while Postgres is stopped under it: reports show cached figures, tracking answers."""

from __future__ import annotations

import json
import os

import pytest
import requests

from common.local_herald import LocalHerald
from common.local_services import service_tempdir
from tests.web import sign_in

pytestmark = pytest.mark.slow

DEMO = ("demo@herald.test", "herald-demo-password")

SEED = """
import json, time
from datetime import timedelta
from django.utils import timezone
from accounts.models import Workspace
from analytics import services
from campaigns.lib.tracking import make_delivery_token
from campaigns.models import Campaign, CampaignLink, Delivery
from subscribers.models import Subscriber
ws = Workspace.objects.get(name="Demo Workspace")
campaign = Campaign.objects.create(workspace=ws, name="Outage report", subject="Hi", status="sent")
for position, url in enumerate(["https://example.com/one", "https://example.com/two"]):
    CampaignLink.objects.create(campaign=campaign, position=position, url=url)
sent_at = timezone.now() - timedelta(minutes=10)
tokens = []
for i in range(5):
    s = Subscriber.objects.create(workspace=ws, email=f"outage{i}@example.org")
    d = Delivery.objects.create(
        workspace=ws, campaign=campaign, subscriber=s, email=s.email, status="sent", sent_at=sent_at
    )
    tokens.append(make_delivery_token(workspace_id=ws.pk, campaign_id=campaign.pk, delivery_id=d.pk))
time.sleep(0.05)
services.ledger_sync()
print(json.dumps({"campaign": campaign.pk, "tokens": tokens}))
"""


@pytest.fixture(scope="module")
def herald():
    directory = service_tempdir("herald-analytics-degraded-")
    herald = LocalHerald(
        directory,
        extra_env={
            "WEB_CONCURRENCY": "1",
            "ANALYTICS_LEDGER_SETTLE_SECONDS": "0",
            "ANALYTICS_REPORT_CACHE_SECONDS": "0",
            "ANALYTICS_SPOOL_DIR": str(directory / "spool"),
            "ANALYTICS_SPOOL_RETRY_SECONDS": "0.5",
        },
    )
    herald.up()
    yield herald
    herald.down()


BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
}


def get(herald, path, session=None):
    # A person's browser: requests' own user agent is (rightly) flagged as a scanner's.
    return (session or requests).get(f"{herald.url}{path}", timeout=10, allow_redirects=False, headers=BROWSER)


def test_reports_show_cached_figures_and_clicks_redirect_while_postgres_is_down(herald):
    seeded = json.loads(herald.manage("shell", "-c", SEED).strip().splitlines()[-1])
    campaign, tokens = seeded["campaign"], seeded["tokens"]
    session = sign_in(herald.url, *DEMO)
    assert get(herald, f"/t/c/{tokens[0]}/1").headers["Location"] == "https://example.com/two"
    herald.manage("shell", "-c", "from analytics.tasks import drain_stream; drain_stream()")
    report = get(herald, f"/analytics/campaigns/{campaign}/", session)
    assert report.status_code == 200
    assert 'data-figure="sent">5<' in report.text and 'data-figure="unique_clicks">1<' in report.text
    assert get(herald, "/", session).status_code == 200

    herald.postgres.stop()
    try:
        # The report answers from its last figures, saying how old they are.
        report = get(herald, f"/analytics/campaigns/{campaign}/", session)
        assert report.status_code == 200, report.text[:500]
        assert 'data-testid="stale-notice"' in report.text
        assert 'data-figure="sent">5<' in report.text and 'data-figure="unique_clicks">1<' in report.text
        assert 'data-testid="engagement-chart"' in report.text
        dashboard = get(herald, "/", session)
        assert dashboard.status_code == 200 and 'data-testid="stale-notice"' in dashboard.text
        # A report never cached is a 503 page, not a 500.
        missing = get(herald, f"/analytics/campaigns/{campaign + 1000}/", session)
        assert missing.status_code == 503
        # Clicks still redirect (Redis holds the events), opens still answer.
        for token in tokens[1:3]:
            click = get(herald, f"/t/c/{token}/0")
            assert click.status_code == 302 and click.headers["Location"] == "https://example.com/one"
        assert get(herald, f"/t/o/{tokens[3]}.gif").status_code == 200
    finally:
        herald.postgres.start()
    herald.manage("shell", "-c", "from analytics.tasks import drain_stream; drain_stream()")
    report = get(herald, f"/analytics/campaigns/{campaign}/", session)
    assert 'data-figure="unique_clicks">3<' in report.text and 'data-figure="unique_opens">1<' in report.text
    assert 'data-testid="stale-notice"' not in report.text


def test_drill_clicks_while_the_primary_is_killed_are_all_redirected_and_recorded(herald):
    """DRILL tracking_during_db_failover on the single-node launcher: Postgres is killed (SIGKILL)
    during a click load and started again; every click redirects and every one is stored once."""
    import signal
    import threading
    import time

    seeded = json.loads(
        herald.manage("shell", "-c", SEED.replace("Outage report", "Drill").replace("outage{i}", "drill{i}"))
        .strip()
        .splitlines()[-1]
    )
    campaign, tokens = seeded["campaign"], seeded["tokens"]
    assert get(herald, f"/t/c/{tokens[0]}/0").status_code == 302  # the node has the link table
    herald.manage("shell", "-c", "from analytics.tasks import drain_stream; drain_stream()")
    results, stop = [], threading.Event()

    def load():
        session = requests.Session()
        index = 0
        while not stop.is_set() and len(results) < 5000:
            token = tokens[index % len(tokens)]
            index += 1
            try:
                response = session.get(
                    f"{herald.url}/t/c/{token}/0", timeout=10, allow_redirects=False, headers=BROWSER
                )
                results.append(
                    response.status_code == 302 and response.headers["Location"] == "https://example.com/one"
                )
            except requests.RequestException:
                results.append(False)
            time.sleep(0.005)

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(1.0)
    os.killpg(herald.postgres.process.pid, signal.SIGKILL)  # the postmaster and every backend, at once
    herald.postgres.process.wait(timeout=10)
    time.sleep(3.0)
    herald.postgres.start()
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=30)
    clicks, redirected = len(results), sum(results)
    herald.manage("shell", "-c", "from analytics.tasks import drain_stream; drain_stream()")
    recorded = int(
        herald.manage(
            "shell",
            "-c",
            f"from analytics.models import Event; print(Event.objects.filter(campaign_id={campaign}, "
            "type='clicked').count())",
        )
        .strip()
        .splitlines()[-1]
    )
    print(f"DRILL tracking_during_db_failover: clicks={clicks} redirected={redirected} events_recorded={recorded - 1}")
    assert clicks > 50
    assert redirected == clicks
    assert recorded - 1 == clicks  # the warm-up click is the one extra
