"""Privacy: a full export of one person, erasure that keeps only a hash, and no silent re-adding."""

import json

import pytest
from django.core.exceptions import ValidationError

from accounts.models import IdempotencyRecord
from subscribers.models import AuditEntry, ListMembership, Subscriber, Suppression
from subscribers.services import (
    ErasedAddressError,
    erasure_digest,
    subscriber_create,
    subscriber_erase,
    subscriber_upsert,
    suppression_add,
)
from tests.subscribers.conftest import bearer

pytestmark = pytest.mark.django_db


def test_the_export_holds_everything_about_the_person(alice_client, acme, team):
    ada = acme.subscriber
    Subscriber.objects.filter(pk=ada.pk).update(
        attributes={"plan": "pro"}, consent_method="form", consent_ip="203.0.113.9", consent_text="Yes please"
    )
    suppression_add(workspace_id=team.a.id, value="ada@example.org", actor=team.alice.user)
    response = alice_client.get(f"/subscribers/{ada.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(f'attachment; filename="subscriber-{ada.pk}-')
    data = json.loads(response.content)
    assert data["subscriber"]["email"] == "ada@example.org" and data["subscriber"]["attributes"] == {"plan": "pro"}
    assert data["consent"] == {"at": None, "method": "form", "ip": "203.0.113.9", "text": "Yes please"}
    assert [(m["list"], m["status"]) for m in data["memberships"]] == [("Newsletter", "confirmed")]
    assert [(s["kind"], s["value"]) for s in data["suppressions"]] == [("address", "ada@example.org")]
    assert AuditEntry.objects.filter(subscriber_id=ada.pk, action="export", actor_label="alice@acme.test").exists()


def test_the_export_through_the_api(client, acme, keys):
    response = client.get(f"/api/subscribers/{acme.subscriber.pk}/export", **bearer(keys.read))
    assert response.status_code == 200
    assert response.json()["subscriber"]["email"] == "ada@example.org"


def test_erasure_leaves_only_the_hash_and_scrubs_the_trail(alice_client, acme, team):
    ada = acme.subscriber
    suppression_add(workspace_id=team.a.id, value="ada@example.org", actor=team.alice.user)
    IdempotencyRecord.objects.create(
        workspace=team.a,
        key="k",
        request_fingerprint="f",
        status_code=201,
        response_body=b'{"email": "ada@example.org"}',
    )
    page = alice_client.get(f"/subscribers/{ada.pk}/erase/")
    assert "cannot be undone" in page.content.decode()
    wrong = alice_client.post(f"/subscribers/{ada.pk}/erase/", {"email": "someone@else.org"})
    assert wrong.status_code == 400 and Subscriber.objects.filter(pk=ada.pk).exists()
    assert alice_client.post(f"/subscribers/{ada.pk}/erase/", {"email": "ada@example.org"}).status_code == 302
    assert not Subscriber.objects.filter(pk=ada.pk).exists()
    assert not ListMembership.objects.filter(subscriber_id=ada.pk).exists()
    assert sorted(Suppression.objects.filter(workspace=team.a).values_list("kind", "value")) == [
        ("address", "blocked@example.org"),
        ("hash", erasure_digest(workspace_id=team.a.id, email="ada@example.org")),
    ]
    assert not Suppression.objects.filter(value="ada@example.org").exists()
    assert not IdempotencyRecord.objects.filter(key="k").exists()
    trail = " ".join(f"{e.object_repr} {json.dumps(e.changes)}" for e in AuditEntry.objects.filter(workspace=team.a))
    assert "ada@example.org" not in trail and "Ada Lovelace" not in trail
    assert AuditEntry.objects.filter(action="erase", subscriber_id=ada.pk, actor_label="alice@acme.test").exists()


def test_an_erased_address_cannot_come_back_through_any_create_path(client, alice_client, acme, team, keys):
    subscriber_erase(subscriber=acme.subscriber, actor=team.alice.user)
    with pytest.raises(ErasedAddressError, match="erased"):
        subscriber_create(workspace_id=team.a.id, email="ADA@example.org")
    with pytest.raises(ErasedAddressError):
        subscriber_upsert(workspace_id=team.a.id, email="ada@example.org")
    api = client.post(
        "/api/subscribers",
        data=json.dumps({"email": "ada@example.org", "upsert": True}),
        content_type="application/json",
        **bearer(keys.write),
    )
    assert api.status_code == 422 and "erased at the person's request" in api.json()["detail"]
    page = alice_client.post("/subscribers/new/", {"email": "ada@example.org"})
    assert page.status_code == 400 and "erased at the person&#x27;s request" in page.content.decode()
    assert not Subscriber.objects.filter(email="ada@example.org").exists()
    # Another workspace is not bound by it.
    assert subscriber_create(workspace_id=team.b.id, email="ada@example.org").workspace_id == team.b.id


def test_renaming_a_subscriber_to_an_erased_address_is_refused(team, acme):
    other = subscriber_create(workspace_id=team.a.id, email="other@example.org")
    subscriber_erase(subscriber=acme.subscriber, actor=None)
    from subscribers.services import subscriber_update

    with pytest.raises(ValidationError, match="erased"):
        subscriber_update(subscriber=other, actor=None, email="ada@example.org")


def test_the_api_can_erase(client, acme, keys, team):
    response = client.post(f"/api/subscribers/{acme.subscriber.pk}/erase", **bearer(keys.write))
    assert response.status_code == 204
    assert Suppression.objects.filter(workspace=team.a, kind="hash").count() == 1


def test_imports_can_find_erased_addresses_in_one_query(team, acme, django_assert_num_queries):
    from subscribers.selectors import erased_emails

    subscriber_erase(subscriber=acme.subscriber, actor=None)
    with django_assert_num_queries(1):
        found = erased_emails(workspace_id=team.a.id, emails=["Ada@Example.org", "new@example.org"])
    assert found == {"ada@example.org"}
    assert erased_emails(workspace_id=team.b.id, emails=["ada@example.org"]) == set()
