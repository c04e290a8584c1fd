"""factory_boy factories for Herald's models."""

import factory
from django.contrib.auth.hashers import make_password

from accounts.models import Member, User, Workspace

PASSWORD = "correct-horse-battery"
# Hashing with Argon2 costs tens of milliseconds; hash the shared test password once.
_PASSWORD_HASH = make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["email"]

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = _PASSWORD_HASH


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Member.Role.EDITOR
