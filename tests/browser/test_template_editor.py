"""The template editor's live preview in a real browser: it follows typing and shows problems in place."""

import pytest

from accounts.models import Member
from campaigns.models import Template
from tests.factories import PASSWORD, MemberFactory, SubscriberFactory, UserFactory, WorkspaceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_the_preview_follows_the_editor_and_the_template_saves(page, live_server):
    workspace = WorkspaceFactory(name="Northwind")
    MemberFactory(workspace=workspace, user=UserFactory(email="nina@northwind.test"), role=Member.Role.EDITOR)
    SubscriberFactory(workspace=workspace, email="grace@northwind.test", name="Grace Hopper")
    sign_in(page, live_server, "nina@northwind.test")

    page.goto(f"{live_server.url}/campaigns/templates/new/")
    page.get_by_label("Name", exact=True).fill("Welcome")
    page.get_by_label("Subject").fill("Hello {{ subscriber.first_name | default('friend') }}")
    page.get_by_label("HTML body").fill("<p>Dear {{ subscriber.name }}</p>")
    subject = page.get_by_test_id("preview-subject")
    page.wait_for_function("document.getElementById('preview-subject').textContent === 'Hello Ada'")

    page.get_by_label("Preview as").fill("grace@northwind.test")
    page.get_by_label("Preview as").dispatch_event("change")
    page.wait_for_function("document.getElementById('preview-subject').textContent === 'Hello Grace'")
    frame = page.frame_locator("#preview-html")
    assert frame.locator("p").first.inner_text() == "Dear Grace Hopper"

    page.get_by_label("HTML body").fill("<p>Dear {{ subscriber.name }</p>")
    error = page.locator("[data-errors-for=html] .field-error")
    error.wait_for()
    assert "HTML body, line 1" in error.inner_text()
    assert subject.inner_text() == "Hello Grace"  # the last good preview stays

    page.get_by_label("HTML body").fill("<p>Dear {{ subscriber.name }}</p>")
    page.wait_for_function("!document.querySelector('[data-errors-for=html] .field-error')")
    page.get_by_role("button", name="Save template").click()
    page.wait_for_url(f"{live_server.url}/campaigns/templates/*/")
    assert Template.objects.get(workspace=workspace).name == "Welcome"
