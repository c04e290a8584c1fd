"""API keys on the workspace's settings page: owners and admins create (secret shown once), list, revoke."""

import pytest

from accounts.api import hash_api_key
from accounts.models import ApiKey
from accounts.services import api_key_create
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_an_owner_creates_a_key_and_sees_the_secret_once(alice_client, team):
    response = alice_client.post("/accounts/api-keys/", {"name": "CRM sync", "scope": "write"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(workspace=team.a, name="CRM sync")
    secret = response.context["secret"]
    assert key.key_hash == hash_api_key(secret) and key.scope == "write"
    settings_page = alice_client.get("/accounts/settings/").content.decode()
    assert "CRM sync" in settings_page and key.prefix in settings_page
    assert secret not in settings_page and key.key_hash not in settings_page


def test_a_key_needs_a_name(alice_client, team):
    response = alice_client.post("/accounts/api-keys/", {"name": "  ", "scope": "read"})
    assert response.status_code == 400
    assert not ApiKey.objects.exists()


def test_revoking_asks_then_stops_the_key(alice_client, team):
    key, secret = api_key_create(workspace=team.a, name="old", scope="read")
    assert "Revoke key" in alice_client.get(f"/accounts/api-keys/{key.pk}/revoke/").content.decode()
    alice_client.post(f"/accounts/api-keys/{key.pk}/revoke/")
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert alice_client.get("/api/workspace", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


@pytest.mark.parametrize("who", ["bob", "victor"])
def test_editors_and_viewers_cannot_manage_keys(client, team, who):
    key, _ = api_key_create(workspace=team.a, name="k", scope="read")
    client_for(client, getattr(team, who))
    assert client.post("/accounts/api-keys/", {"name": "mine", "scope": "write"}).status_code == 403
    assert client.get(f"/accounts/api-keys/{key.pk}/revoke/").status_code == 403
    assert client.post(f"/accounts/api-keys/{key.pk}/revoke/").status_code == 403
    assert "API keys" not in client.get("/accounts/settings/").content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None and ApiKey.objects.count() == 1


def test_charlie_cannot_revoke_workspace_a_keys(charlie_client, team):
    key, _ = api_key_create(workspace=team.a, name="k", scope="read")
    assert charlie_client.post(f"/accounts/api-keys/{key.pk}/revoke/").status_code == 404
    assert "k" not in [k.name for k in charlie_client.get("/accounts/settings/").context["api_keys"]]
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_settings_page_shows_the_keys_section_once_and_a_plain_title(alice_client, team):
    page = alice_client.get("/accounts/settings/").content.decode()
    assert "<title>Settings · Herald</title>" in page
    assert page.count('id="api-keys"') == 1
