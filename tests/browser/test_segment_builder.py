"""The segment builder in a real browser: conditions built with the controls, a live count, a clear error."""

import pytest

from accounts.models import Member
from subscribers.models import Segment
from tests.factories import PASSWORD, MemberFactory, SubscriberFactory, UserFactory, WorkspaceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_building_a_segment_shows_a_live_count_and_saves_the_rules(page, live_server):
    workspace = WorkspaceFactory(name="Northwind")
    MemberFactory(workspace=workspace, user=UserFactory(email="nina@northwind.test"), role=Member.Role.EDITOR)
    for email in ("ann@gmail.example", "bob@gmail.example", "cy@corp.example"):
        SubscriberFactory(workspace=workspace, email=email)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("nina@northwind.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/subscribers/segments/new/")
    count = page.get_by_test_id("segment-count")
    page.wait_for_function("document.getElementById('segment-count').textContent.includes('3 subscribers')")
    page.get_by_label("Name").fill("Gmail readers")
    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("Value").fill("gmail")
    page.wait_for_function("document.getElementById('segment-count').textContent.includes('2 subscribers')")
    assert count.inner_text() == "2 subscribers match"
    # A date comparison with a negative number of days is explained, not counted.
    page.get_by_label("Field").select_option("created_at")
    page.get_by_label("Comparison").select_option("within_days")
    page.get_by_label("Value").fill("-3")
    page.wait_for_function("document.getElementById('segment-error').textContent.length > 0")
    assert "whole number" in page.locator("#segment-error").inner_text()
    page.get_by_label("Value").fill("30")
    page.wait_for_function("document.getElementById('segment-count').textContent.includes('3 subscribers')")
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url(f"{live_server.url}/subscribers/segments/")
    saved = Segment.objects.get(name="Gmail readers")
    assert saved.rules == {"match": "all", "conditions": [{"field": "created_at", "op": "within_days", "value": 30}]}
