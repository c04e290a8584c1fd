"""A marketer sends a campaign in a real browser: template, campaign, send, progress to 100%, mail in the sink."""

import pytest

from accounts.models import Member
from campaigns.models import Campaign, Relay
from common.smtp_sink import SmtpSink
from tests.campaigns.helpers import FAST_WORKER_ENV
from tests.factories import (
    PASSWORD,
    ListMembershipFactory,
    MailingListFactory,
    MemberFactory,
    SenderFactory,
    SubscriberFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.workers import running_worker

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_create_send_and_watch_a_campaign_reach_its_list(page, live_server, tmp_path):
    workspace = WorkspaceFactory(name="Northwind")
    MemberFactory(workspace=workspace, user=UserFactory(email="nina@northwind.test"), role=Member.Role.EDITOR)
    SenderFactory(workspace=workspace, email="news@northwind.test", name="Northwind News")
    readers = MailingListFactory(workspace=workspace, name="Readers")
    for number in range(1, 31):
        subscriber = SubscriberFactory(
            workspace=workspace, email=f"reader{number}@example.org", name=f"Reader {number}"
        )
        ListMembershipFactory(mailing_list=readers, subscriber=subscriber)

    with SmtpSink(tmp_path / "relay") as sink, running_worker(queues=("send",), extra_env=FAST_WORKER_ENV):
        Relay.objects.create(workspace=workspace, name="Relay", host=sink.host, port=sink.port, tls_mode="none")

        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Email").fill("nina@northwind.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")

        # The template, in the template editor.
        page.goto(f"{live_server.url}/campaigns/templates/new/")
        page.get_by_label("Name", exact=True).fill("Monthly")
        page.get_by_label("Subject").fill("News for {{ subscriber.first_name }}")
        page.get_by_label("HTML body").fill(
            '<p>Dear {{ subscriber.name }}, <a href="https://example.com/n">read</a>.</p>'
        )
        page.get_by_role("button", name="Save template").click()
        page.wait_for_url(f"{live_server.url}/campaigns/templates/*/")

        # The campaign, from the template, to the list.
        page.goto(f"{live_server.url}/campaigns/")
        page.get_by_role("link", name="New campaign").click()
        page.get_by_label("Name", exact=True).fill("March news")
        page.get_by_label("Template").select_option(label="Monthly")
        page.get_by_label("From").select_option(label="Northwind News <news@northwind.test>")
        page.get_by_label("Readers").first.check()
        page.get_by_role("button", name="Create draft").click()
        page.wait_for_url(f"{live_server.url}/campaigns/*/")
        assert page.get_by_test_id("audience-count").inner_text() == "30"

        # Send now, after the confirmation.
        page.get_by_role("link", name="Send or schedule…").click()
        assert "30" in page.locator("section.card").first.inner_text()
        page.get_by_role("button", name="Schedule").click()
        page.wait_for_url(f"{live_server.url}/campaigns/*/")

        # The progress bar follows the ledger to 100% without a manual reload.
        page.wait_for_function(
            "document.querySelector('[data-testid=progress-percent]')"
            " && document.querySelector('[data-testid=progress-percent]').textContent.trim() === '100.0%'",
            timeout=60000,
        )
        page.wait_for_function(
            "document.querySelector('[data-testid=campaign-status]').textContent.trim() === 'Sent'", timeout=30000
        )
        assert page.locator("[data-field=sent]").inner_text() == "30"
        assert page.locator("[data-field=remaining]").inner_text() == "0"

    campaign = Campaign.objects.get(workspace=workspace, name="March news")
    assert campaign.status == "sent" and campaign.sent_count == 30
    arrived = {message["X-Sink-Rcpt-To"]: message for message in sink.messages()}
    assert len(arrived) == 30
    message = arrived["reader7@example.org"]
    assert message["Subject"] == "News for Reader"
    assert "Dear Reader 7" in message.get_body(("html",)).get_content()
