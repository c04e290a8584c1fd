"""Unsubscribe links: the page, RFC 8058 one-click (as curl sends it), forged tokens, preferences."""

import subprocess

import pytest
import requests
from django.core import signing

from subscribers.models import AuditEntry, ListMembership, Subscriber
from subscribers.tokens import make_unsubscribe_token
from tests.factories import ListMembershipFactory, MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(team):
    news = MailingListFactory(workspace=team.a, name="News")
    digest = MailingListFactory(workspace=team.a, name="Digest")
    subscriber = SubscriberFactory(workspace=team.a, email="reader@example.net")
    ListMembershipFactory(mailing_list=news, subscriber=subscriber)
    ListMembershipFactory(mailing_list=digest, subscriber=subscriber)
    subscriber.lists = (news, digest)
    return subscriber


def token_for(subscriber, campaign_id=None):
    return make_unsubscribe_token(
        workspace_id=subscriber.workspace_id, subscriber_id=subscriber.pk, campaign_id=campaign_id
    )


def status_of(subscriber):
    subscriber.refresh_from_db()
    return subscriber.status, sorted(
        ListMembership.objects.filter(subscriber=subscriber).values_list("status", flat=True)
    )


def test_the_page_asks_first_and_links_to_preferences(client, reader):
    token = token_for(reader)
    response = client.get(f"/u/{token}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "reader@example.net" in page and f"/u/{token}/preferences/" in page
    assert status_of(reader) == ("active", ["confirmed", "confirmed"])


def test_the_button_unsubscribes_from_everything(client, reader):
    response = client.post(f"/u/{token_for(reader, campaign_id=42)}/")
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert status_of(reader) == ("unsubscribed", ["unsubscribed", "unsubscribed"])
    entry = AuditEntry.objects.get(subscriber_id=reader.pk, action="unsubscribe")
    assert entry.actor_label == "subscriber via unsubscribe link" and "campaign 42" in entry.changes["method"]


def test_one_click_with_the_form_body_mail_clients_send(client, reader):
    response = client.post(
        f"/u/{token_for(reader)}/",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert status_of(reader)[0] == "unsubscribed"
    # Repeating it is harmless.
    assert client.post(f"/u/{token_for(reader)}/", {"List-Unsubscribe": "One-Click"}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_one_click_works_with_plain_curl_against_a_running_server(live_server, team):
    subscriber = SubscriberFactory(workspace=team.a, email="curl@example.net")
    url = f"{live_server.url}/u/{token_for(subscriber)}/"
    result = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "List-Unsubscribe=One-Click", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout == "200", result.stderr
    subscriber.refresh_from_db()
    assert subscriber.status == "unsubscribed"
    # No cookie, no CSRF token, no session: nothing but the signed link.
    forged = requests.post(url[:-3] + "xx/", data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert forged.status_code == 404


def test_forged_altered_or_foreign_tokens_are_refused_and_change_nothing(client, reader):
    good = token_for(reader)
    altered = good[:-1] + ("A" if good[-1] != "A" else "B")
    resigned = signing.dumps([reader.workspace_id, reader.pk], salt="herald.subscribers.confirm", compress=True)
    for bad in (altered, resigned, good[:-5], "nonsense"):
        for response in (
            client.get(f"/u/{bad}/"),
            client.post(f"/u/{bad}/", {"List-Unsubscribe": "One-Click"}),
            client.post(f"/u/{bad}/"),
            client.get(f"/u/{bad}/preferences/"),
            client.post(f"/u/{bad}/preferences/", {"everything": "yes"}),
        ):
            assert response.status_code == 404
    assert status_of(reader) == ("active", ["confirmed", "confirmed"])


def test_a_token_naming_another_workspace_changes_nothing_there(client, reader, team):
    wrong = make_unsubscribe_token(workspace_id=team.b.id, subscriber_id=reader.pk)
    assert client.post(f"/u/{wrong}/", {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert status_of(reader)[0] == "active"


def test_preferences_leave_one_list_and_keep_the_other(client, reader):
    news, digest = reader.lists
    token = token_for(reader)
    page = client.get(f"/u/{token}/preferences/").content.decode()
    assert "News" in page and "Digest" in page
    response = client.post(f"/u/{token}/preferences/", {"lists": [str(digest.pk)]})
    assert "saved" in response.content.decode()
    assert ListMembership.objects.get(subscriber=reader, mailing_list=news).status == "unsubscribed"
    assert ListMembership.objects.get(subscriber=reader, mailing_list=digest).status == "confirmed"
    assert Subscriber.objects.get(pk=reader.pk).status == "active"
    # Ticking it again is the person's own choice: they are back on it, with consent recorded.
    client.post(f"/u/{token}/preferences/", {"lists": [str(news.pk), str(digest.pk)]})
    assert ListMembership.objects.get(subscriber=reader, mailing_list=news).status == "confirmed"
    assert Subscriber.objects.get(pk=reader.pk).consent_method == "preferences page"


def test_preferences_can_leave_everything(client, reader):
    response = client.post(f"/u/{token_for(reader)}/preferences/", {"everything": "yes"})
    assert "You are unsubscribed" in response.content.decode()
    assert status_of(reader) == ("unsubscribed", ["unsubscribed", "unsubscribed"])


def test_the_link_helpers_build_working_absolute_urls(client, reader, settings):
    from subscribers.tokens import preferences_url, unsubscribe_url

    settings.SITE_URL = "https://mail.example.com"
    link = unsubscribe_url(workspace_id=reader.workspace_id, subscriber_id=reader.pk, campaign_id=3)
    prefs = preferences_url(workspace_id=reader.workspace_id, subscriber_id=reader.pk)
    assert link.startswith("https://mail.example.com/u/") and prefs.endswith("/preferences/")
    assert client.get(prefs.removeprefix("https://mail.example.com")).status_code == 200
    assert (
        client.post(link.removeprefix("https://mail.example.com"), {"List-Unsubscribe": "One-Click"}).status_code == 200
    )
    assert status_of(reader)[0] == "unsubscribed"
