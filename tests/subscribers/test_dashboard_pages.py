"""The dashboard's subscriber, list, segment and suppression pages, as an editor uses them."""

import json

import pytest

from subscribers.models import AuditEntry, ListMembership, MailingList, Segment, Subscriber, Suppression
from tests.conftest import client_for
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob_client(client, team):
    return client_for(client, team.bob)


def test_subnavigation_links_every_section(bob_client, acme):
    page = bob_client.get("/subscribers/").content.decode()
    for href in ("/subscribers/lists/", "/subscribers/segments/", "/subscribers/suppressions/"):
        assert f'href="{href}"' in page


def test_create_a_subscriber_with_attributes_and_lists(bob_client, acme):
    response = bob_client.post(
        "/subscribers/new/",
        {"email": "Grace@Navy.example", "name": "Grace", "attributes": '{"rank": "admiral"}', "lists": [acme.list.pk]},
    )
    subscriber = Subscriber.objects.get(email="grace@navy.example")
    assert response.status_code == 302 and response["Location"] == f"/subscribers/{subscriber.pk}/"
    assert subscriber.attributes == {"rank": "admiral"} and subscriber.source == "dashboard"
    assert ListMembership.objects.get(subscriber=subscriber).status == "confirmed"
    detail = bob_client.get(f"/subscribers/{subscriber.pk}/").content.decode()
    assert "admiral" in detail and "Newsletter" in detail and "bob@acme.test" in detail  # activity


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "nope"}, "not a valid email address"),
        ({"email": "ada@example.org"}, "already a subscriber"),
        ({"email": "x@example.org", "attributes": "[1, 2]"}, "Enter a JSON object"),
        ({"email": "x@example.org", "attributes": "{oops"}, "not valid JSON"),
    ],
)
def test_create_refuses_bad_input_clearly(bob_client, acme, data, message):
    response = bob_client.post("/subscribers/new/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Subscriber.objects.count() == 1


def test_edit_records_what_changed(bob_client, acme):
    ada = acme.subscriber
    response = bob_client.post(
        f"/subscribers/{ada.pk}/edit/",
        {"email": "ada@example.org", "name": "Ada King", "attributes": '{"title": "Countess"}', "status": "active"},
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.filter(subscriber_id=ada.pk, action="update").latest("id")
    assert entry.changes["name"] == ["Ada Lovelace", "Ada King"]
    assert entry.actor_user_id == ada.workspace.members.get(user__email="bob@acme.test").user_id


def test_only_owners_and_admins_reactivate_an_unsubscribed_person(client, team, acme):
    Subscriber.objects.filter(pk=acme.subscriber.pk).update(status="unsubscribed")
    data = {"email": "ada@example.org", "name": "Ada", "status": "active"}
    client_for(client, team.bob)
    refused = client.post(f"/subscribers/{acme.subscriber.pk}/edit/", data)
    assert refused.status_code == 400 and "only an owner or admin" in refused.content.decode()
    assert Subscriber.objects.get(pk=acme.subscriber.pk).status == "unsubscribed"
    client_for(client, team.alice)
    assert client.post(f"/subscribers/{acme.subscriber.pk}/edit/", data).status_code == 302
    assert Subscriber.objects.get(pk=acme.subscriber.pk).status == "active"


def test_delete_asks_then_deletes(bob_client, acme):
    assert "Delete subscriber" in bob_client.get(f"/subscribers/{acme.subscriber.pk}/delete/").content.decode()
    assert Subscriber.objects.filter(pk=acme.subscriber.pk).exists()
    bob_client.post(f"/subscribers/{acme.subscriber.pk}/delete/")
    assert not Subscriber.objects.filter(pk=acme.subscriber.pk).exists()


def test_detail_shows_consent_memberships_and_activity(bob_client, acme):
    from django.utils import timezone

    Subscriber.objects.filter(pk=acme.subscriber.pk).update(
        consent_at=timezone.now(),
        consent_method="single opt-in form",
        consent_ip="203.0.113.5",
        consent_text="I agree to news",
    )
    bob_client.post(f"/subscribers/{acme.subscriber.pk}/unsubscribe/")
    page = bob_client.get(f"/subscribers/{acme.subscriber.pk}/").content.decode()
    assert "203.0.113.5" in page and "I agree to news" in page and "single opt-in form" in page
    assert "Newsletter" in page and "Unsubscribed" in page and "bob@acme.test" in page


def test_lists_show_counts_per_status_and_the_embed_snippet(bob_client, acme, team):
    other = SubscriberFactory(workspace=team.a)
    ListMembership.objects.create(workspace=team.a, mailing_list=acme.list, subscriber=other, status="unconfirmed")
    index = bob_client.get("/subscribers/lists/").content.decode()
    assert "<td>1</td><td>1</td><td>0</td>" in index.replace("\n", "").replace("      ", "")
    detail = bob_client.get(f"/subscribers/lists/{acme.list.pk}/").content.decode()
    assert f"/subscribe/{acme.list.public_token}/" in detail
    assert "&lt;form method=&quot;post&quot;" in detail or '&lt;form method="post"' in detail


def test_list_create_edit_and_delete(bob_client, team):
    created = bob_client.post(
        "/subscribers/lists/new/", {"name": "Weekly", "opt_in": "double", "consent_text": "Weekly mail, please."}
    )
    weekly = MailingList.objects.get(name="Weekly")
    assert created.status_code == 302 and weekly.opt_in == "double"
    duplicate = bob_client.post("/subscribers/lists/new/", {"name": "Weekly", "opt_in": "single", "consent_text": "x"})
    assert duplicate.status_code == 400 and "already a list named" in duplicate.content.decode()
    bob_client.post(
        f"/subscribers/lists/{weekly.pk}/edit/", {"name": "Weekly news", "opt_in": "single", "consent_text": "ok"}
    )
    weekly.refresh_from_db()
    assert (weekly.name, weekly.opt_in) == ("Weekly news", "single")
    assert "Delete list" in bob_client.get(f"/subscribers/lists/{weekly.pk}/delete/").content.decode()
    bob_client.post(f"/subscribers/lists/{weekly.pk}/delete/")
    assert not MailingList.objects.filter(pk=weekly.pk).exists()


def test_segment_builder_saves_valid_rules_and_shows_errors(bob_client, acme):
    page = bob_client.get("/subscribers/segments/new/").content.decode()
    assert "js/segment-builder.js" in page and "segment-builder-data" in page
    bad = bob_client.post(
        "/subscribers/segments/new/",
        {"name": "Bad", "rules": json.dumps({"conditions": [{"field": "shoe_size", "op": "eq", "value": 9}]})},
    )
    assert bad.status_code == 400 and "unknown field" in bad.content.decode()
    rules = {"match": "all", "conditions": [{"field": "list", "op": "in_list", "value": acme.list.pk}]}
    good = bob_client.post("/subscribers/segments/new/", {"name": "On news", "rules": json.dumps(rules)})
    assert good.status_code == 302
    assert Segment.objects.get(name="On news").rules == rules


def test_the_live_count_endpoint(bob_client, acme, team):
    SubscriberFactory(workspace=team.a, email="other@example.org", name="Other")
    SubscriberFactory(workspace=team.b, email="ada2@example.org", name="Ada Two")

    def count(rules):
        return bob_client.get("/subscribers/segments/count/", {"rules": json.dumps(rules)})

    assert count({"conditions": []}).json() == {"count": 2}
    assert count({"conditions": [{"field": "name", "op": "contains", "value": "ada"}]}).json() == {"count": 1}
    error = count({"conditions": [{"field": "name", "op": "within_days", "value": 3}]})
    assert error.status_code == 400 and "cannot be compared" in error.json()["error"]
    assert bob_client.get("/subscribers/segments/count/", {"rules": "{"}).status_code == 400


def test_segment_delete_asks_first(bob_client, acme):
    assert "Delete segment" in bob_client.get(f"/subscribers/segments/{acme.segment.pk}/delete/").content.decode()
    bob_client.post(f"/subscribers/segments/{acme.segment.pk}/delete/")
    assert not Segment.objects.filter(pk=acme.segment.pk).exists()


def test_suppressions_add_search_and_remove(bob_client, acme, team):
    bob_client.post("/subscribers/suppressions/add/", {"kind": "domain", "value": "@Spam.Example", "note": "spam"})
    bob_client.post("/subscribers/suppressions/add/", {"kind": "address", "value": "Someone@Example.com"})
    refused = bob_client.post("/subscribers/suppressions/add/", {"kind": "address", "value": "no-at-sign"}, follow=True)
    assert "needs an" in refused.content.decode()
    values = set(Suppression.objects.filter(workspace=team.a).values_list("value", flat=True))
    assert values == {"blocked@example.org", "spam.example", "someone@example.com"}
    found = bob_client.get("/subscribers/suppressions/", {"q": "spam"}).content.decode()
    assert "spam.example" in found and "someone@example.com" not in found
    domain = Suppression.objects.get(value="spam.example")
    assert "Remove suppression" in bob_client.get(f"/subscribers/suppressions/{domain.pk}/remove/").content.decode()
    bob_client.post(f"/subscribers/suppressions/{domain.pk}/remove/")
    assert not Suppression.objects.filter(pk=domain.pk).exists()
    assert AuditEntry.objects.filter(
        object_type="suppression", action="unsuppress", actor_label="bob@acme.test"
    ).exists()


def test_membership_add_and_remove_from_the_detail_page(bob_client, acme, team):
    from tests.factories import MailingListFactory

    vips = MailingListFactory(workspace=team.a, name="VIPs")
    ada = acme.subscriber
    bob_client.post(f"/subscribers/{ada.pk}/lists/", {"list_id": vips.pk})
    assert ListMembership.objects.filter(subscriber=ada, mailing_list=vips, status="confirmed").exists()
    bob_client.post(f"/subscribers/{ada.pk}/lists/{vips.pk}/remove/")
    assert not ListMembership.objects.filter(subscriber=ada, mailing_list=vips).exists()
