"""A person signs in through the real login page and lands on their workspace's dashboard."""

import pytest

from accounts.models import Member
from tests.factories import PASSWORD, MemberFactory, UserFactory, WorkspaceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_signing_in_shows_the_dashboard(page, live_server):
    workspace = WorkspaceFactory(name="Northwind")
    MemberFactory(workspace=workspace, user=UserFactory(email="nina@northwind.test"), role=Member.Role.OWNER)

    page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("nina@northwind.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.get_by_test_id("current-workspace").inner_text().startswith("Northwind")
    navigation = page.get_by_role("navigation", name="Main")
    for section in ("Dashboard", "Subscribers", "Campaigns", "Templates", "Analytics", "Settings"):
        assert navigation.get_by_role("link", name=section).is_visible()


def test_a_wrong_password_shows_the_error_on_the_page(page, live_server):
    UserFactory(email="nina@northwind.test")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("nina@northwind.test")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Please enter a correct email address and password")
