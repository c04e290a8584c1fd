"""The synthetic probe signs in over HTTP like a user; its runs feed dashboard availability."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from operations.models import SliMinute, SyntheticCheck
from operations.slo import sli_flush
from operations.synthetic import PROBE_WORKSPACE_SLUG, synthetic_check_run
from tests.factories import UserFactory
from tests.workers import running_web

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
