"""The Django admin pages for the subscribers models and API keys answer, and keep the audit trail."""

import pytest

from accounts.services import api_key_create
from subscribers.models import AuditEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, team):
    client.force_login(UserFactory(email="root@herald.test", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "model", ["subscriber", "mailinglist", "listmembership", "segment", "suppression", "auditentry"]
)
def test_changelists_and_change_pages_render(admin_client, acme, model):
    assert admin_client.get(f"/admin/subscribers/{model}/").status_code == 200
    assert admin_client.get(f"/admin/subscribers/{model}/", {"q": "ada"}).status_code == 200


def test_detail_pages_render(admin_client, acme):
    for path in (
        f"/admin/subscribers/subscriber/{acme.subscriber.pk}/change/",
        f"/admin/subscribers/mailinglist/{acme.list.pk}/change/",
        f"/admin/subscribers/segment/{acme.segment.pk}/change/",
        f"/admin/subscribers/suppression/{acme.suppression.pk}/change/",
    ):
        assert admin_client.get(path).status_code == 200, path


def test_the_audit_trail_is_read_only_in_the_admin(admin_client, acme, team):
    entry = AuditEntry.objects.create(workspace=team.a, actor_label="x", action="create", object_type="list")
    page = admin_client.get(f"/admin/subscribers/auditentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client.post(f"/admin/subscribers/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403


def test_an_admin_edit_of_a_subscriber_is_audited(admin_client, acme):
    response = admin_client.post(
        f"/admin/subscribers/subscriber/{acme.subscriber.pk}/change/",
        {
            "name": "Ada K",
            "attributes": "{}",
            "source": "",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": acme.subscriber.memberships.get().pk,
            "memberships-0-subscriber": acme.subscriber.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AuditEntry.objects.filter(subscriber_id=acme.subscriber.pk, actor_label="root@herald.test").exists()


def test_api_keys_in_the_admin_never_show_the_hash(admin_client, team):
    key, secret = api_key_create(workspace=team.a, name="CRM", scope="read")
    listing = admin_client.get("/admin/accounts/apikey/").content.decode()
    change = admin_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    assert key.prefix in listing
    for page in (listing, change):
        assert key.key_hash not in page and secret not in page
    admin_client.post("/admin/accounts/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
