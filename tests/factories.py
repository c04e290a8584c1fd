"""factory_boy factories for Herald's models."""

import factory
from django.contrib.auth.hashers import make_password
from django.utils import timezone

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


class MailingListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "subscribers.MailingList"

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"List {n}")


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "subscribers.Subscriber"

    workspace = factory.SubFactory(WorkspaceFactory)
    email = factory.Sequence(lambda n: f"person{n}@example.org")
    name = factory.Faker("name")


class ListMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "subscribers.ListMembership"

    mailing_list = factory.SubFactory(MailingListFactory)
    subscriber = factory.SubFactory(SubscriberFactory, workspace=factory.SelfAttribute("..mailing_list.workspace"))
    workspace = factory.SelfAttribute("mailing_list.workspace")
    status = "confirmed"


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Template"

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Template {n}")
    subject = "Hello {{ subscriber.first_name }}"
    html = '<p>Hi {{ subscriber.name }}, read <a href="https://example.com/news">the news</a>.</p>'
    text = ""


class SenderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Sender"

    workspace = factory.SubFactory(WorkspaceFactory)
    email = factory.Sequence(lambda n: f"news{n}@sender.test")
    name = "Newsletter"
    verified_at = factory.LazyFunction(timezone.now)


class RelayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Relay"

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Relay {n}")
    host = "127.0.0.1"
    port = 2525
    tls_mode = "none"
    priority = 10


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Campaign"

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    subject = "News for {{ subscriber.first_name }}"
    html = '<p>Hi {{ subscriber.name }}, read <a href="https://example.com/news">the news</a>.</p>'
    sender = factory.SubFactory(SenderFactory, workspace=factory.SelfAttribute("..workspace"))
