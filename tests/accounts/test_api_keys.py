"""API keys: shown once, stored hashed, revocable, scoped; the API refuses anything else."""

import pytest
from django.core.exceptions import ValidationError

from accounts.api import hash_api_key
from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_key_is_stored_only_as_a_hash_and_reaches_its_own_workspace(client, team):
    key, secret = api_key_create(workspace=team.a, name="CRM sync", scope=ApiKey.Scope.READ)
    stored = ApiKey.objects.get(pk=key.pk)
    assert secret not in (stored.key_hash, stored.prefix) and stored.key_hash == hash_api_key(secret)
    response = client.get("/api/workspace", **bearer(secret))
    assert response.status_code == 200
    assert response.json() == {
        "id": team.a.id,
        "name": "Acme",
        "slug": "acme",
        "key_name": "CRM sync",
        "key_scope": "read",
    }


@pytest.mark.parametrize("header", ["", "Bearer ", "Bearer hk_nonsense", "Basic dXNlcjpwYXNz"])
def test_missing_or_unknown_keys_are_refused(client, team, header):
    response = client.get("/api/workspace", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_a_key_with_one_character_changed_is_refused(client, team):
    _, secret = api_key_create(workspace=team.a, name="k", scope=ApiKey.Scope.WRITE)
    forged = secret[:-1] + ("a" if secret[-1] != "a" else "b")
    assert client.get("/api/workspace", **bearer(forged)).status_code == 401


def test_a_revoked_key_stops_working_at_once(client, team):
    key, secret = api_key_create(workspace=team.a, name="k", scope=ApiKey.Scope.READ)
    assert client.get("/api/workspace", **bearer(secret)).status_code == 200
    api_key_revoke(key=key)
    assert client.get("/api/workspace", **bearer(secret)).status_code == 401


def test_keys_need_a_name_and_a_known_scope(team):
    with pytest.raises(ValidationError, match="name"):
        api_key_create(workspace=team.a, name=" ", scope="read")
    with pytest.raises(ValidationError, match="Scope"):
        api_key_create(workspace=team.a, name="k", scope="admin")


def test_a_read_key_stands_in_for_a_viewer_and_a_write_key_for_an_editor(team):
    read, _ = api_key_create(workspace=team.a, name="r", scope="read")
    write, _ = api_key_create(workspace=team.a, name="w", scope="write")
    assert (read.can_write, write.can_write, write.can_manage) == (False, True, False)


def test_each_key_is_rate_limited_on_its_own(client, team, settings):
    from config.urls import api

    throttle = api.throttle[0]
    original = throttle.rate, throttle.num_requests, throttle.duration
    throttle.rate, throttle.num_requests, throttle.duration = "3/m", 3, 60
    try:
        _, busy = api_key_create(workspace=team.a, name="busy", scope="read")
        _, quiet = api_key_create(workspace=team.a, name="quiet", scope="read")
        codes = [client.get("/api/workspace", **bearer(busy)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert client.get("/api/workspace", **bearer(quiet)).status_code == 200
    finally:
        throttle.rate, throttle.num_requests, throttle.duration = original


def test_the_openapi_document_is_served(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Herald API"
    assert client.get("/api/docs").status_code == 200
