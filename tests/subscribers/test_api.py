"""The subscribers API: scopes, tenancy, idempotent create/upsert, filters and cursors, errors as JSON."""

import json

import pytest

from subscribers.models import AuditEntry, ListMembership, MailingList, Subscriber
from tests.factories import ListMembershipFactory, MailingListFactory, SubscriberFactory
from tests.subscribers.conftest import bearer

pytestmark = pytest.mark.django_db


def api(client, method, path, secret, body=None, **headers):
    kwargs = {"content_type": "application/json", **bearer(secret), **headers}
    if body is not None:
        kwargs["data"] = json.dumps(body)
    return getattr(client, method)(f"/api{path}", **kwargs)


# (method, path, body) of every endpoint that reads or writes one object of workspace A.
READS = [
    ("get", "/subscribers/{s}", None),
    ("get", "/subscribers/{s}/export", None),
    ("get", "/lists/{l}", None),
    ("get", "/lists/{l}/members", None),
]
WRITES = [
    ("patch", "/subscribers/{s}", {"name": "Changed"}),
    ("post", "/subscribers/{s}/unsubscribe", {}),
    ("delete", "/subscribers/{s}", None),
    ("post", "/subscribers/{s}/erase", None),
    ("patch", "/lists/{l}", {"name": "Changed"}),
    ("delete", "/lists/{l}", None),
    ("post", "/lists/{l}/members", {"subscriber_id": "{s}"}),
    ("delete", "/lists/{l}/members/{s}", None),
]
CREATES = [
    ("post", "/subscribers", {"email": "new@example.org"}),
    ("post", "/lists", {"name": "New list"}),
]


def fill(value, acme):
    if isinstance(value, str):
        filled = value.format(s=acme.subscriber.pk, l=acme.list.pk)
        return int(filled) if value in ("{s}", "{l}") else filled
    if isinstance(value, dict):
        return {k: fill(v, acme) for k, v in value.items()}
    return value


def intact(acme):
    subscriber = Subscriber.objects.get(pk=acme.subscriber.pk)
    assert (subscriber.name, subscriber.status) == ("Ada Lovelace", "active")
    assert MailingList.objects.get(pk=acme.list.pk).name == "Newsletter"
    assert ListMembership.objects.filter(subscriber=subscriber, status="confirmed").count() == 1


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_another_workspaces_key_gets_404(client, acme, keys, method, path, body):
    response = api(client, method, fill(path, acme), keys.charlie, fill(body, acme))
    assert response.status_code == 404
    assert "detail" in response.json()
    intact(acme)


@pytest.mark.parametrize(("method", "path", "body"), WRITES + CREATES)
def test_a_read_key_cannot_write(client, acme, keys, method, path, body):
    response = api(client, method, fill(path, acme), keys.read, fill(body, acme))
    assert response.status_code == 403
    assert "read" in response.json()["detail"].lower() or "change" in response.json()["detail"]
    intact(acme)
    assert not Subscriber.objects.filter(email="new@example.org").exists()


@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_a_read_key_can_read(client, acme, keys, method, path, body):
    assert api(client, method, fill(path, acme), keys.read).status_code == 200


def test_lists_of_each_workspace_stay_apart(client, acme, keys):
    assert [item["name"] for item in api(client, "get", "/lists", keys.charlie).json()] == []
    assert api(client, "get", "/subscribers", keys.charlie).json() == {"items": [], "next_cursor": None}


def test_create_then_get_update_unsubscribe_delete(client, acme, keys):
    created = api(
        client,
        "post",
        "/subscribers",
        keys.write,
        {"email": "Grace@Navy.Example", "name": "Grace", "attributes": {"rank": "admiral"}, "lists": [acme.list.pk]},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == "grace@navy.example" and body["source"] == "api"
    assert body["lists"] == [{"list_id": acme.list.pk, "list_name": "Newsletter", "status": "confirmed"}]
    sid = body["id"]
    assert api(client, "get", f"/subscribers/{sid}", keys.read).json()["attributes"] == {"rank": "admiral"}
    patched = api(client, "patch", f"/subscribers/{sid}", keys.write, {"name": "Grace Hopper"})
    assert patched.json()["name"] == "Grace Hopper"
    assert api(client, "post", f"/subscribers/{sid}/unsubscribe", keys.write, {}).json() == {"changed": True}
    assert api(client, "get", f"/subscribers/{sid}", keys.read).json()["status"] == "unsubscribed"
    # An API key cannot undo a person's unsubscribe.
    refused = api(client, "patch", f"/subscribers/{sid}", keys.write, {"status": "active"})
    assert refused.status_code == 422 and "owner or admin" in refused.json()["detail"]
    assert api(client, "delete", f"/subscribers/{sid}", keys.write).status_code == 204
    assert api(client, "get", f"/subscribers/{sid}", keys.read).status_code == 404
    actors = set(AuditEntry.objects.filter(subscriber_id=sid).values_list("actor_label", flat=True))
    assert actors == {f"API key writer ({keys.write_key.prefix}…)"}


def test_idempotent_create_same_key_same_answer_one_subscriber(client, team, keys):
    body = {"email": "once@example.org", "name": "Once"}
    first = api(client, "post", "/subscribers", keys.write, body, HTTP_IDEMPOTENCY_KEY="abc-123")
    second = api(client, "post", "/subscribers", keys.write, body, HTTP_IDEMPOTENCY_KEY="abc-123")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Subscriber.objects.filter(email="once@example.org").count() == 1
    other = api(
        client, "post", "/subscribers", keys.write, {"email": "twice@example.org"}, HTTP_IDEMPOTENCY_KEY="abc-123"
    )
    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    assert not Subscriber.objects.filter(email="twice@example.org").exists()


def test_create_of_an_existing_address_is_409_and_upsert_updates(client, acme, keys):
    again = api(client, "post", "/subscribers", keys.write, {"email": "ada@example.org"})
    assert again.status_code == 409 and "already a subscriber" in again.json()["detail"]
    upserted = api(
        client,
        "post",
        "/subscribers",
        keys.write,
        {"email": "ADA@example.org", "name": "Ada King", "attributes": {"plan": "pro"}, "upsert": True},
    )
    assert upserted.status_code == 200
    assert upserted.json()["id"] == acme.subscriber.pk and upserted.json()["name"] == "Ada King"
    assert upserted.json()["attributes"]["plan"] == "pro"


def test_bad_input_is_a_json_error_and_changes_nothing(client, acme, keys):
    for body in ({"email": "not-an-address"}, {"email": "x@example.org", "lists": [999999]}, {"name": "no email"}):
        response = api(client, "post", "/subscribers", keys.write, body)
        assert response.status_code == 422, body
        assert response["Content-Type"].startswith("application/json")
    assert not Subscriber.objects.filter(email="x@example.org").exists()
    assert api(client, "get", "/subscribers", keys.read, **{"QUERY_STRING": "cursor=abc"}).status_code == 400
    broken = client.post("/api/subscribers", data="{not json", content_type="application/json", **bearer(keys.write))
    assert broken.status_code in (400, 422)


def test_list_filters_and_cursor_pagination(client, team, keys):
    news = MailingListFactory(workspace=team.a, name="News")
    made = [SubscriberFactory(workspace=team.a, email=f"p{n}@example.org") for n in range(5)]
    for subscriber in made[:3]:
        ListMembershipFactory(mailing_list=news, subscriber=subscriber)
    Subscriber.objects.filter(pk=made[4].pk).update(status="bounced")
    seen, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api(client, "get", "/subscribers", keys.read, QUERY_STRING=query).json()
        seen += [item["email"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [s.email for s in reversed(made)]
    on_news = api(client, "get", "/subscribers", keys.read, QUERY_STRING=f"list_id={news.pk}").json()["items"]
    assert sorted(item["email"] for item in on_news) == ["p0@example.org", "p1@example.org", "p2@example.org"]
    bounced = api(client, "get", "/subscribers", keys.read, QUERY_STRING="status=bounced").json()["items"]
    assert [item["email"] for item in bounced] == ["p4@example.org"]
    exact = api(client, "get", "/subscribers", keys.read, QUERY_STRING="email=P3@example.org").json()["items"]
    assert [item["email"] for item in exact] == ["p3@example.org"]


def test_lists_crud_and_memberships(client, team, keys):
    created = api(client, "post", "/lists", keys.write, {"name": "Weekly", "opt_in": "double"})
    assert created.status_code == 201
    lid = created.json()["id"]
    assert created.json()["subscribe_url"].endswith("/")
    duplicate = api(client, "post", "/lists", keys.write, {"name": "Weekly"})
    assert duplicate.status_code == 422 and "already a list" in duplicate.json()["detail"]
    subscriber = SubscriberFactory(workspace=team.a, email="m@example.org")
    added = api(client, "post", f"/lists/{lid}/members", keys.write, {"email": "m@example.org"})
    assert added.status_code == 201 and added.json()["status"] == "confirmed"
    assert api(client, "post", f"/lists/{lid}/members", keys.write, {"subscriber_id": subscriber.pk}).status_code == 200
    members = api(client, "get", f"/lists/{lid}/members", keys.read).json()
    assert [m["email"] for m in members["items"]] == ["m@example.org"]
    assert api(client, "get", f"/lists/{lid}", keys.read).json()["counts"] == {
        "confirmed": 1,
        "unconfirmed": 0,
        "unsubscribed": 0,
    }
    assert api(client, "delete", f"/lists/{lid}/members/{subscriber.pk}", keys.write).status_code == 204
    assert api(client, "delete", f"/lists/{lid}/members/{subscriber.pk}", keys.write).status_code == 404
    assert api(client, "patch", f"/lists/{lid}", keys.write, {"opt_in": "triple"}).status_code == 422
    assert api(client, "patch", f"/lists/{lid}", keys.write, {"name": "Weekly news"}).json()["name"] == "Weekly news"
    assert api(client, "delete", f"/lists/{lid}", keys.write).status_code == 204
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()


def test_a_foreign_subscriber_cannot_be_added_to_my_list(client, acme, keys, team):
    theirs = SubscriberFactory(workspace=team.b)
    response = api(client, "post", f"/lists/{acme.list.pk}/members", keys.write, {"subscriber_id": theirs.pk})
    assert response.status_code == 404
    assert not ListMembership.objects.filter(subscriber=theirs).exists()


def test_filtering_by_another_workspaces_list_or_segment_is_404(client, acme, keys):
    for query in (f"list_id={acme.list.pk}", f"segment_id={acme.segment.pk}"):
        response = api(client, "get", "/subscribers", keys.charlie, QUERY_STRING=query)
        assert response.status_code == 404, query


def test_unsubscribe_takes_no_body_or_some_lists(client, team, acme, keys):
    vips = MailingListFactory(workspace=team.a, name="VIPs")
    ListMembershipFactory(mailing_list=vips, subscriber=acme.subscriber)
    path = f"/api/subscribers/{acme.subscriber.pk}/unsubscribe"
    some = client.post(
        path, data=json.dumps({"list_ids": [vips.pk]}), content_type="application/json", **bearer(keys.write)
    )
    assert some.json() == {"changed": True}
    assert Subscriber.objects.get(pk=acme.subscriber.pk).status == "active"
    assert ListMembership.objects.get(mailing_list=vips).status == "unsubscribed"
    bad = client.post(path, data='{"list_ids": "all"}', content_type="application/json", **bearer(keys.write))
    assert bad.status_code == 422 and "list_ids" in bad.json()["detail"]
    bare = client.post(path, **bearer(keys.write))
    assert bare.status_code == 200 and bare.json() == {"changed": True}
    assert Subscriber.objects.get(pk=acme.subscriber.pk).status == "unsubscribed"
