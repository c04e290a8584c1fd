"""Operators' command createworkspace (seed_demo: tests/operations/test_demo.py)."""

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Member, User, Workspace

pytestmark = pytest.mark.django_db


def test_createworkspace_creates_the_workspace_and_its_owner(capsys):
    call_command("createworkspace", "Initech", "--owner", "Peter@Initech.test")
    workspace = Workspace.objects.get(slug="initech")
    owner = Member.objects.get(workspace=workspace)
    assert owner.role == Member.Role.OWNER
    assert owner.user.email == "peter@initech.test"
    output = capsys.readouterr().out
    assert "Password:" in output
    password = output.split("Password:")[1].strip()
    assert owner.user.check_password(password)


def test_createworkspace_reuses_an_existing_user(team):
    call_command("createworkspace", "Second", "--owner", "alice@acme.test")
    assert Member.objects.filter(user=team.alice.user).count() == 2


def test_createworkspace_refuses_a_bad_email():
    with pytest.raises(CommandError, match="must be an email address"):
        call_command("createworkspace", "Initech", "--owner", "not-an-email")
    assert not Workspace.objects.exists()


def test_createworkspace_refuses_a_taken_slug(team):
    with pytest.raises(CommandError, match="already exists"):
        call_command("createworkspace", "Other", "--owner", "o@example.com", "--slug", "acme")
    assert not User.objects.filter(email="o@example.com").exists()
