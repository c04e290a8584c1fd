"""Tenancy: each member sees only their own workspace; roles limit what they may change."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse

from accounts.access import get_member_for_member
from accounts.models import Member
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

SECTION_PAGES = [
    "dashboard",
    "subscribers:list",
    "campaigns:list",
    "campaigns:templates",
    "analytics:overview",
    "accounts:settings",
]


def test_access_helper_returns_a_teammate(team):
    assert get_member_for_member(team.alice, team.bob.pk) == team.bob


def test_access_helper_hides_another_workspaces_member(team):
    with pytest.raises(Http404):
        get_member_for_member(team.charlie, team.bob.pk)


@pytest.mark.parametrize("bad_id", ["abc", None, -1, 10**12])
def test_access_helper_treats_nonsense_ids_as_not_found(team, bad_id):
    with pytest.raises(Http404):
        get_member_for_member(team.alice, bad_id)


def test_access_helper_refuses_writes_below_admin(team):
    with pytest.raises(PermissionDenied):
        get_member_for_member(team.bob, team.victor.pk, write=True)


@pytest.mark.parametrize("page", SECTION_PAGES)
def test_every_section_shows_the_members_own_workspace(alice_client, page):
    response = alice_client.get(reverse(page))
    assert response.status_code == 200
    assert b"Acme" in response.content
    assert b"Globex" not in response.content


@pytest.mark.parametrize("page", SECTION_PAGES)
def test_every_section_asks_anonymous_visitors_to_sign_in(client, page):
    response = client.get(reverse(page))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_a_user_without_a_workspace_is_told_so(client, db):
    client.force_login(UserFactory(email="loner@example.com"))
    response = client.get(reverse("dashboard"))
    assert response.status_code == 403
    assert b"not a member of any active workspace" in response.content


def test_settings_lists_only_the_workspaces_own_members(charlie_client, team):
    response = charlie_client.get(reverse("accounts:settings"))
    assert b"charlie@globex.test" in response.content
    assert b"alice@acme.test" not in response.content


def test_settings_page_query_count_does_not_grow_with_members(alice_client, team, django_assert_max_num_queries):
    for n in range(15):
        MemberFactory(workspace=team.a, user=UserFactory(email=f"extra{n}@acme.test"))
    with django_assert_max_num_queries(8):
        assert alice_client.get(reverse("accounts:settings")).status_code == 200


def test_owner_changes_a_teammates_role(alice_client, team):
    response = alice_client.post(reverse("accounts:member_role", args=[team.bob.pk]), {"role": "admin"})
    assert response.status_code == 302
    team.bob.refresh_from_db()
    assert team.bob.role == Member.Role.ADMIN


def test_a_stranger_cannot_change_a_role_in_another_workspace(charlie_client, team):
    response = charlie_client.post(reverse("accounts:member_role", args=[team.bob.pk]), {"role": "viewer"})
    assert response.status_code == 404
    team.bob.refresh_from_db()
    assert team.bob.role == Member.Role.EDITOR


def test_an_editor_cannot_change_roles(client, team):
    client.force_login(team.bob.user)
    response = client.post(reverse("accounts:member_role", args=[team.victor.pk]), {"role": "owner"})
    assert response.status_code == 403
    team.victor.refresh_from_db()
    assert team.victor.role == Member.Role.VIEWER


def test_an_unknown_role_is_refused_with_a_message(alice_client, team):
    response = alice_client.post(reverse("accounts:member_role", args=[team.bob.pk]), {"role": "emperor"}, follow=True)
    assert b"Choose one of the listed roles" in response.content
    team.bob.refresh_from_db()
    assert team.bob.role == Member.Role.EDITOR


def test_removing_a_member_asks_for_confirmation_first(alice_client, team):
    response = alice_client.get(reverse("accounts:member_remove", args=[team.bob.pk]))
    assert response.status_code == 200
    assert b"Remove bob@acme.test?" in response.content
    assert Member.objects.filter(pk=team.bob.pk).exists()
    alice_client.post(reverse("accounts:member_remove", args=[team.bob.pk]))
    assert not Member.objects.filter(pk=team.bob.pk).exists()


def test_a_stranger_cannot_remove_a_member_of_another_workspace(charlie_client, team):
    assert charlie_client.get(reverse("accounts:member_remove", args=[team.bob.pk])).status_code == 404
    assert charlie_client.post(reverse("accounts:member_remove", args=[team.bob.pk])).status_code == 404
    assert Member.objects.filter(pk=team.bob.pk).exists()


def test_the_last_owner_cannot_be_demoted_or_removed(client, team):
    admin = MemberFactory(workspace=team.a, user=UserFactory(email="ada@acme.test"), role=Member.Role.ADMIN)
    client.force_login(admin.user)
    response = client.post(reverse("accounts:member_role", args=[team.alice.pk]), {"role": "viewer"}, follow=True)
    assert b"Only an owner can change another owner" in response.content
    client.force_login(team.alice.user)
    MemberFactory(workspace=team.a, user=UserFactory(email="otto@acme.test"), role=Member.Role.OWNER)
    Member.objects.filter(user__email="otto@acme.test").delete()
    response = client.post(reverse("accounts:member_role", args=[team.alice.pk]), {"role": "viewer"})
    team.alice.refresh_from_db()
    assert team.alice.role == Member.Role.OWNER


def test_renaming_the_workspace_needs_an_admin(client, team):
    client.force_login(team.bob.user)
    assert client.post(reverse("accounts:settings"), {"name": "Hijacked"}).status_code == 403
    team.a.refresh_from_db()
    assert team.a.name == "Acme"
    client.force_login(team.alice.user)
    client.post(reverse("accounts:settings"), {"name": "Acme Corp"})
    team.a.refresh_from_db()
    assert team.a.name == "Acme Corp"


def test_renaming_to_blank_is_refused(alice_client, team):
    response = alice_client.post(reverse("accounts:settings"), {"name": "  "})
    assert response.status_code == 400
    team.a.refresh_from_db()
    assert team.a.name == "Acme"


def test_a_member_of_two_workspaces_switches_between_them(client, team):
    MemberFactory(workspace=team.b, user=team.alice.user, role=Member.Role.VIEWER)
    client.force_login(team.alice.user)
    assert b"Switch workspace" in client.get(reverse("dashboard")).content
    client.post(reverse("accounts:workspace_switch"), {"workspace_id": team.b.pk})
    response = client.get(reverse("accounts:settings"))
    assert b"charlie@globex.test" in response.content
    assert b"bob@acme.test" not in response.content


def test_switching_to_a_workspace_one_is_not_in_is_refused(alice_client, team):
    response = alice_client.post(reverse("accounts:workspace_switch"), {"workspace_id": team.b.pk}, follow=True)
    assert b"You are not a member of that workspace" in response.content
    assert b"bob@acme.test" in alice_client.get(reverse("accounts:settings")).content
