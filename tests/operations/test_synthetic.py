"""The synthetic probe signs in over HTTP like a user; its runs feed dashboard availability."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from operations.models import SliMinute, SyntheticCheck
from operations.slo import sli_flush
from operations.synthetic import PROBE_WORKSPACE_SLUG, synthetic_check_run
from tests.factories import UserFactory
from tests.workers import running_web, running_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def availability_counts():
    sli_flush(until=timezone.now() + timedelta(minutes=1))  # the current minute too
    rows = SliMinute.objects.filter(objective="dashboard_availability")
    return sum(row.good for row in rows), sum(row.total for row in rows)


def test_the_probe_passes_while_a_node_serves_fails_when_none_does_and_the_slo_page_shows_it(client):
    with running_web() as node:
        passed = synthetic_check_run(base_url=node.url)
        url = node.url
    assert passed.ok, passed.steps
    assert [step["name"] for step in passed.steps] == ["sign_in", "dashboard"]
    assert all(step["ok"] for step in passed.steps)

    failed = synthetic_check_run(base_url=url)  # the node is gone now
    assert not failed.ok
    assert failed.failed_step == "sign_in" and failed.error == "could not connect"

    with running_web() as node:
        assert synthetic_check_run(base_url=node.url).ok

    assert SyntheticCheck.objects.count() == 3

    client.force_login(UserFactory(email="ops@herald.test", is_staff=True))
    page = client.get(reverse("operations:slos")).content.decode()
    assert 'data-testid="synthetic-minute-failed"' in page
    assert "could not connect" in page


def test_every_run_counts_towards_dashboard_availability():
    with running_web() as node:
        synthetic_check_run(base_url=node.url)
        synthetic_check_run(base_url=node.url + "/no-such-prefix")
    good, total = availability_counts()
    assert (good, total) == (1, 2)


def test_the_probe_works_in_its_own_workspace_only(team):
    with running_web() as node:
        synthetic_check_run(base_url=node.url)
    probe = SyntheticCheck.objects.get()
    assert probe.ok
    from accounts.models import Member

    (membership,) = Member.objects.filter(user__email="synthetic-probe@herald.invalid")
    assert membership.workspace.slug == PROBE_WORKSPACE_SLUG
    assert not Member.objects.filter(user__email="synthetic-probe@herald.invalid", workspace=team.a).exists()


def test_the_slo_page_says_when_no_check_has_run(admin_client):
    page = admin_client.get(reverse("operations:slos")).content.decode()
    assert "No synthetic check has run yet" in page


def test_the_probe_sends_itself_a_campaign_through_a_worker_and_finds_it_in_the_sink(settings, smtp_sink):
    from campaigns.models import Campaign, Relay

    settings.SYNTHETIC_SINK_DIR = str(smtp_sink.directory)
    settings.SYNTHETIC_SMTP_HOST, settings.SYNTHETIC_SMTP_PORT = settings.EMAIL_HOST, settings.EMAIL_PORT
    settings.SYNTHETIC_SEND_TIMEOUT_SECONDS = 20
    with running_web() as node:
        with running_worker(queues=("send",)):
            sent = synthetic_check_run(base_url=node.url)
            again = synthetic_check_run(base_url=node.url)  # the probe's setup is reused, not duplicated
        settings.SYNTHETIC_SEND_TIMEOUT_SECONDS = 3
        unsent = synthetic_check_run(base_url=node.url)  # no send worker any more

    assert sent.ok and again.ok, sent.steps
    assert [step["name"] for step in sent.steps] == ["sign_in", "dashboard", "send_campaign", "delivered"]
    delivered = sent.steps[-1]
    assert delivered["detail"] == "message received by the SMTP sink" and delivered["ms"] > 0
    timings = ", ".join(f"{step['name']} {step['ms']} ms" for step in sent.steps)
    print(f"synthetic send: {timings}")

    assert not unsent.ok and unsent.failed_step == "delivered"
    assert "did not arrive within 3 s" in unsent.error
    probe_campaigns = Campaign.objects.filter(workspace__slug=PROBE_WORKSPACE_SLUG)
    assert list(probe_campaigns.values_list("status", flat=True).order_by("pk")) == ["sent", "sent", "cancelled"]
    (relay,) = Relay.objects.filter(workspace__slug=PROBE_WORKSPACE_SLUG)
    assert (relay.host, relay.port) == (settings.EMAIL_HOST, settings.EMAIL_PORT)
    # The probe removes its own message once seen: the sink keeps only other mail.
    assert not [m for m in smtp_sink.messages() if "synthetic check" in str(m["Subject"])]
    assert availability_counts() == (2, 3)
