"""Signing in and out, and the lockout after repeated failures."""

import pytest
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")


def test_login_page_renders(client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_signing_in_leads_to_the_dashboard_of_the_users_workspace(client, team):
    response = client.post(LOGIN, {"username": "alice@acme.test", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert b"Acme" in response.content
    assert b"Globex" not in response.content


def test_email_is_matched_whatever_its_case(client, team):
    response = client.post(LOGIN, {"username": "Alice@ACME.test", "password": PASSWORD})
    assert response.status_code == 302


def test_a_wrong_password_gets_a_clear_error(client, team):
    response = client.post(LOGIN, {"username": "alice@acme.test", "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct email address and password" in response.content


def test_repeated_failures_lock_the_account_out(client, team, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": "alice@acme.test", "password": "wrong"})
    response = client.post(LOGIN, {"username": "alice@acme.test", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_account_not_global(client, team, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": "alice@acme.test", "password": "wrong"})
    response = client.post(LOGIN, {"username": "bob@acme.test", "password": PASSWORD})
    assert response.status_code == 302


def test_signing_out_ends_the_session(alice_client):
    response = alice_client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert alice_client.get(reverse("dashboard")).status_code == 302


def test_dashboard_asks_anonymous_visitors_to_sign_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_session_survives_a_cache_flush(alice_client):
    # cached_db sessions: Postgres keeps the session when the Redis copy is gone.
    from django.core.cache import cache

    cache.clear()
    assert alice_client.get(reverse("dashboard")).status_code == 200


def test_failures_count_together_whatever_the_case_of_the_address(client, team, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        address = "ALICE@acme.test" if n % 2 else "alice@acme.test"
        client.post(LOGIN, {"username": address, "password": "wrong"})
    assert client.post(LOGIN, {"username": "alice@acme.test", "password": PASSWORD}).status_code == 429
