"""Every subscribers page: charlie (another workspace) gets 404, victor (viewer) cannot write."""

import json

import pytest

from subscribers.models import MailingList, Segment, Subscriber, Suppression
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

# (method, url template, data) of every page that shows or changes one object of workspace A.
OBJECT_PAGES = [
    ("get", "/subscribers/{s}/", None),
    ("get", "/subscribers/{s}/export/", None),
    ("get", "/subscribers/lists/{l}/", None),
]
OBJECT_WRITES = [
    ("get", "/subscribers/{s}/edit/", None),
    ("post", "/subscribers/{s}/edit/", {"email": "x@example.org", "status": "active"}),
    ("get", "/subscribers/{s}/delete/", None),
    ("post", "/subscribers/{s}/delete/", {}),
    ("get", "/subscribers/{s}/erase/", None),
    ("post", "/subscribers/{s}/erase/", {"email": "ada@example.org"}),
    ("post", "/subscribers/{s}/unsubscribe/", {}),
    ("post", "/subscribers/{s}/lists/", {"list_id": "{l}"}),
    ("post", "/subscribers/{s}/lists/{l}/remove/", {}),
    ("get", "/subscribers/lists/{l}/edit/", None),
    ("post", "/subscribers/lists/{l}/edit/", {"name": "Hijacked", "opt_in": "single", "consent_text": "x"}),
    ("get", "/subscribers/lists/{l}/delete/", None),
    ("post", "/subscribers/lists/{l}/delete/", {}),
    ("get", "/subscribers/segments/{g}/", None),
    ("post", "/subscribers/segments/{g}/", {"name": "x", "rules": '{{"conditions": []}}'}),
    ("get", "/subscribers/segments/{g}/delete/", None),
    ("post", "/subscribers/segments/{g}/delete/", {}),
    ("get", "/subscribers/suppressions/{p}/remove/", None),
    ("post", "/subscribers/suppressions/{p}/remove/", {}),
]
# Pages that create things or act on a selection; a viewer may not use them.
WORKSPACE_WRITES = [
    ("get", "/subscribers/new/", None),
    ("post", "/subscribers/new/", {"email": "new@example.org"}),
    ("post", "/subscribers/bulk/", {"action": "delete", "ids": ["{s}"], "confirm": "yes"}),
    ("get", "/subscribers/lists/new/", None),
    ("post", "/subscribers/lists/new/", {"name": "New", "opt_in": "single", "consent_text": "ok"}),
    ("get", "/subscribers/segments/new/", None),
    ("post", "/subscribers/segments/new/", {"name": "New", "rules": '{{"conditions": []}}'}),
    ("post", "/subscribers/suppressions/add/", {"kind": "address", "value": "z@example.org"}),
]
INDEX_PAGES = ["/subscribers/", "/subscribers/lists/", "/subscribers/segments/", "/subscribers/suppressions/"]


def fill(template, acme):
    ids = {"s": acme.subscriber.pk, "l": acme.list.pk, "g": acme.segment.pk, "p": acme.suppression.pk}
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, list):
        return [fill(item, acme) for item in template]
    if isinstance(template, dict):
        return {key: fill(value, acme) for key, value in template.items()}
    return template


def call(client, method, url, data):
    return client.get(url) if method == "get" else client.post(url, data or {})


def unchanged(acme):
    assert Subscriber.objects.filter(pk=acme.subscriber.pk, email="ada@example.org", status="active").exists()
    assert MailingList.objects.filter(pk=acme.list.pk, name="Newsletter").exists()
    assert Segment.objects.filter(pk=acme.segment.pk, name="Ada").exists()
    assert Suppression.objects.filter(pk=acme.suppression.pk).exists()
    assert acme.subscriber.memberships.count() == 1


@pytest.mark.parametrize(("method", "url", "data"), OBJECT_PAGES + OBJECT_WRITES)
def test_charlie_cannot_reach_workspace_a_objects(client, team, acme, method, url, data):
    client_for(client, team.charlie)
    response = call(client, method, fill(url, acme), fill(data, acme))
    assert response.status_code == 404
    unchanged(acme)


@pytest.mark.parametrize(("method", "url", "data"), OBJECT_WRITES + WORKSPACE_WRITES)
def test_a_viewer_cannot_change_anything(client, team, acme, method, url, data):
    client_for(client, team.victor)
    response = call(client, method, fill(url, acme), fill(data, acme))
    assert response.status_code == 403
    unchanged(acme)
    assert not Subscriber.objects.filter(email="new@example.org").exists()
    assert not MailingList.objects.filter(name="New").exists()


@pytest.mark.parametrize("url", INDEX_PAGES + [p[1] for p in OBJECT_PAGES])
def test_a_viewer_can_read(client, team, acme, url):
    client_for(client, team.victor)
    assert client.get(fill(url, acme)).status_code == 200


@pytest.mark.parametrize("url", INDEX_PAGES)
def test_charlie_sees_only_his_own_workspace(client, team, acme, url):
    client_for(client, team.charlie)
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    for secret in ("ada@example.org", "Newsletter", ">Ada<", "blocked@example.org"):
        assert secret not in body


def test_charlie_cannot_bulk_act_on_workspace_a_subscribers(client, team, acme):
    client_for(client, team.charlie)
    client.post("/subscribers/bulk/", {"action": "delete", "ids": [acme.subscriber.pk], "confirm": "yes"})
    unchanged(acme)


def test_charlie_cannot_count_with_workspace_a_lists(client, team, acme):
    client_for(client, team.charlie)
    rules = json.dumps({"conditions": [{"field": "list", "op": "in_list", "value": acme.list.pk}]})
    response = client.get("/subscribers/segments/count/", {"rules": rules})
    assert response.status_code == 400
    assert "does not exist" in response.json()["error"]


def test_signed_out_visitors_are_sent_to_sign_in(client, acme):
    response = client.get("/subscribers/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
