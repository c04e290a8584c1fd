"""The Django admin lists users, workspaces and members, with search."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["user", "workspace", "member"])
def test_admin_changelists_load_and_search(admin_client, team, model):
    url = reverse(f"admin:accounts_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    response = admin_client.get(url, {"q": "acme"})
    assert response.status_code == 200


def test_admin_workspace_page_shows_members(admin_client, team):
    response = admin_client.get(reverse("admin:accounts_workspace_change", args=[team.a.pk]))
    assert response.status_code == 200
    assert b"alice@acme.test" in response.content


def test_members_of_a_workspace_cannot_open_the_admin(alice_client):
    response = alice_client.get(reverse("admin:index"))
    assert response.status_code == 302
