"""The public status page, incidents opened and updated by operators, and email updates."""

import re

import pytest
from django.urls import reverse

from operations.incidents import status_subscribers_notify
from operations.models import Incident, IncidentUpdate, StatusSubscription
from tests.factories import UserFactory
from tests.mail import outbox

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("smtp_sink")]


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(email="ops@herald.test", is_staff=True))
    return client


@pytest.fixture
def subscribers():
    StatusSubscription.objects.create(email="cto@client.test", confirmed_at="2026-01-01T00:00:00Z")
    StatusSubscription.objects.create(email="unconfirmed@client.test")


def open_incident(client, **overrides):
    data = {
        "title": "Sending is delayed",
        "impact": "major",
        "components": ["sending"],
        "message": "Campaigns are queued but not leaving; we are looking into it.",
        "estimated_resolution_at": "",
    } | overrides
    return client.post(reverse("operations:incident_list"), data)


def deliver_latest_update():
    """What the queued operations.notify_status_subscribers task does on a worker."""
    return status_subscribers_notify(update=IncidentUpdate.objects.select_related("incident").latest("created_at"))


def test_status_page_shows_every_component_operational(client):
    response = client.get(reverse("operations:status"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "All systems operational" in page
    for name in ("Dashboard", "API", "Sending", "Tracking links and opens", "Imports"):
        assert name in page


def test_opening_an_incident_shows_it_publicly_and_emails_confirmed_subscribers(
    operator_client, client, subscribers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = open_incident(operator_client)
    assert response.status_code == 302
    assert len(callbacks) == 1  # the email task is queued once the incident is saved

    status = client.get(reverse("operations:status")).content.decode()
    assert "Sending is delayed" in status
    assert "Partial outage" in status
    assert re.search(r'data-testid="component-sending">Partial outage<', status)
    assert re.search(r'data-testid="component-dashboard">Operational<', status)

    assert deliver_latest_update() == 1
    (message,) = outbox()
    assert message.to == ["cto@client.test"]
    assert message.subject == "[Investigating] Sending is delayed"
    assert "Campaigns are queued but not leaving" in message.body
    assert "/status/unsubscribe/" in message.body


def test_updates_carry_the_estimated_resolution(operator_client, subscribers):
    open_incident(operator_client)
    incident = Incident.objects.get()
    response = operator_client.post(
        reverse("operations:incident_detail", args=[incident.pk]),
        {
            "post_update": "1",
            "status": "identified",
            "message": "A relay refuses connections; failing over.",
            "estimated_resolution_at": "2026-11-23T10:30",
        },
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == "identified"
    deliver_latest_update()
    assert "Estimated resolution: 2026-11-23 10:30" in outbox()[-1].body
    assert outbox()[-1].subject == "[Identified] Sending is delayed"


def test_resolving_needs_a_summary_then_clears_the_page_and_tells_subscribers(operator_client, client, subscribers):
    open_incident(operator_client)
    incident = Incident.objects.get()
    url = reverse("operations:incident_detail", args=[incident.pk])
    response = operator_client.post(url, {"resolve": "1", "message": "Fixed.", "postmortem": ""})
    assert response.status_code == 400
    assert Incident.objects.get().status != "resolved"

    operator_client.post(url, {"resolve": "1", "message": "Fixed.", "postmortem": "A relay's certificate expired."})
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at
    deliver_latest_update()
    assert outbox()[-1].subject == "[Resolved] Sending is delayed"
    assert "A relay's certificate expired." in outbox()[-1].body
    assert "All systems operational" in client.get(reverse("operations:status")).content.decode()


def test_an_incident_needs_components(operator_client):
    response = open_incident(operator_client, components=[])
    assert response.status_code == 400
    assert not Incident.objects.exists()
    response = open_incident(operator_client, components=["the-moon"])
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_a_resolved_incident_takes_no_more_updates(operator_client):
    open_incident(operator_client)
    incident = Incident.objects.get()
    url = reverse("operations:incident_detail", args=[incident.pk])
    operator_client.post(url, {"resolve": "1", "message": "Fixed.", "postmortem": "Done."})
    response = operator_client.post(url, {"post_update": "1", "status": "monitoring", "message": "Again?"})
    assert response.status_code == 400
    assert "open a new one" in response.content.decode()


@pytest.mark.parametrize("who", ["anonymous", "member"])
def test_incident_pages_are_for_operators_only(client, team, who):
    if who == "member":
        client.force_login(team.alice.user)
    assert client.get(reverse("operations:incident_list")).status_code == 302
    assert open_incident(client).status_code == 302
    assert not Incident.objects.exists()


def test_subscribing_takes_a_confirmed_address(client):
    client.post(reverse("operations:status_subscribe"), {"email": "Reader@Client.test"})
    subscription = StatusSubscription.objects.get()
    assert subscription.email == "reader@client.test" and subscription.confirmed_at is None
    link = re.search(r"http\S+/status/confirm/\S+/", outbox()[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    client.get("/" + path)
    subscription.refresh_from_db()
    assert subscription.confirmed_at is not None


def test_a_forged_confirmation_link_is_refused(client):
    StatusSubscription.objects.create(email="reader@client.test")
    response = client.get(reverse("operations:status_confirm", args=["reader@client.test:forged"]), follow=True)
    assert "invalid or has expired" in response.content.decode()
    assert StatusSubscription.objects.get().confirmed_at is None


def test_a_bad_address_is_refused(client):
    response = client.post(reverse("operations:status_subscribe"), {"email": "not-an-address"}, follow=True)
    assert "Enter a valid email address" in response.content.decode()
    assert not StatusSubscription.objects.exists()


def test_unsubscribing_asks_then_removes(client, subscribers, operator_client):
    open_incident(operator_client)
    deliver_latest_update()
    link = re.search(r"/status/unsubscribe/\S+/", outbox()[0].body).group(0)
    assert "Stop incident updates?" in client.get(link).content.decode()
    assert StatusSubscription.objects.filter(email="cto@client.test").exists()
    client.post(link)
    assert not StatusSubscription.objects.filter(email="cto@client.test").exists()


def test_status_json_reports_components_and_incidents(client, operator_client):
    open_incident(operator_client, impact="critical", components=["dashboard", "api"])
    body = client.get(reverse("operations:status_json")).json()
    assert body["status"] == "major_outage"
    states = {component["key"]: component["state"] for component in body["components"]}
    assert states["dashboard"] == "major_outage" and states["sending"] == "operational"
    assert body["incidents"][0]["title"] == "Sending is delayed"
