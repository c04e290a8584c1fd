"""A marketer opens a campaign report in a real browser and sees the engagement chart drawn with data."""

import time
import uuid

import pytest

from accounts.models import Member
from analytics import services
from tests.analytics.helpers import BROWSER, sent_campaign
from tests.factories import PASSWORD, MemberFactory, UserFactory, WorkspaceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_report_draws_opens_and_clicks_over_time(page, live_server, settings):
    settings.ANALYTICS_REPORT_CACHE_SECONDS = 0
    workspace = WorkspaceFactory(name="Northwind")
    MemberFactory(workspace=workspace, user=UserFactory(email="nina@northwind.test"), role=Member.Role.OWNER)
    from datetime import timedelta

    campaign, deliveries = sent_campaign(
        workspace=workspace, recipients=6, name="Winter launch", sent_ago=timedelta(hours=5)
    )
    now = time.time()
    events = []
    for hours_ago, delivery in zip((4, 4, 3, 2, 1, 1), deliveries, strict=True):
        base = {"w": workspace.pk, "c": campaign.pk, "d": delivery.pk, "ua": BROWSER, "ip": "198.51.100.1"}
        events.append({**base, "uid": uuid.uuid4().hex, "type": "opened", "p": None, "ts": now - hours_ago * 3600})
        events.append({**base, "uid": uuid.uuid4().hex, "type": "clicked", "p": 0, "ts": now - hours_ago * 3600 + 60})
    services.events_ingest(events=events)

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("nina@northwind.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    page.get_by_role("link", name="Winter launch").first.click()

    assert page.get_by_role("heading", name="Winter launch").is_visible()
    chart = page.get_by_test_id("engagement-chart").locator("svg")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    opens = chart.locator('polyline[data-series="Unique opens"]')
    points = opens.get_attribute("points").split()
    assert len(points) >= 4  # one per hour from the first open to the last
    heights = {float(point.split(",")[1]) for point in points}
    assert len(heights) > 1, "the line rises and falls with the data"
    assert chart.get_by_text("people per hour", exact=True).is_visible()
    assert chart.get_by_text("Unique clicks", exact=True).is_visible()
    assert page.locator('[data-figure="unique_opens"]').inner_text() == "6"
