"""Shared fixtures: two workspaces and the alice (owner), bob (teammate), charlie (stranger) trio."""

import os
from types import SimpleNamespace

import pytest
from django.conf import settings

from accounts.models import Member
from common.smtp_sink import Store
from tests.factories import PASSWORD, MemberFactory, UserFactory, WorkspaceFactory


def pytest_configure(config):
    # The suite renders templates without running collectstatic first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _clear_cache():
    # The cache lives in Redis, outside the test's transaction; start every test from empty.
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def smtp_sink(settings):
    """The session's real SMTP sink, emptied; the platform's mail goes to it over SMTP.

    pytest-django swaps in Django's in-memory mail backend for every test; this puts the SMTP
    backend back, so what a test checks is what really left over the wire.
    """
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    store = Store(os.environ["SMTP_SINK_DIR"])
    store.clear()
    return store


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def team(db):
    """Workspace A with alice (owner), bob (editor) and victor (viewer); workspace B with charlie (owner)."""
    workspace_a = WorkspaceFactory(name="Acme", slug="acme")
    workspace_b = WorkspaceFactory(name="Globex", slug="globex")
    alice = MemberFactory(workspace=workspace_a, user=UserFactory(email="alice@acme.test"), role=Member.Role.OWNER)
    bob = MemberFactory(workspace=workspace_a, user=UserFactory(email="bob@acme.test"), role=Member.Role.EDITOR)
    victor = MemberFactory(workspace=workspace_a, user=UserFactory(email="victor@acme.test"), role=Member.Role.VIEWER)
    charlie = MemberFactory(
        workspace=workspace_b, user=UserFactory(email="charlie@globex.test"), role=Member.Role.OWNER
    )
    return SimpleNamespace(a=workspace_a, b=workspace_b, alice=alice, bob=bob, victor=victor, charlie=charlie)


def client_for(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def alice_client(client, team):
    return client_for(client, team.alice)


@pytest.fixture
def charlie_client(client, team):
    return client_for(client, team.charlie)
