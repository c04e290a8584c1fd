"""Fixtures for the subscribers tests: a populated workspace A and API keys of each scope."""

from types import SimpleNamespace

import pytest

from accounts.services import api_key_create
from subscribers.models import Segment, Suppression
from tests.factories import ListMembershipFactory, MailingListFactory, SubscriberFactory


@pytest.fixture
def acme(team):
    """In workspace A: a list, a subscriber on it, a segment and a suppression."""
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    ada = SubscriberFactory(workspace=team.a, email="ada@example.org", name="Ada Lovelace")
    ListMembershipFactory(mailing_list=newsletter, subscriber=ada)
    segment = Segment.objects.create(
        workspace=team.a,
        name="Ada",
        rules={"match": "all", "conditions": [{"field": "name", "op": "contains", "value": "Ada"}]},
    )
    suppression = Suppression.objects.create(workspace=team.a, kind="address", value="blocked@example.org")
    return SimpleNamespace(list=newsletter, subscriber=ada, segment=segment, suppression=suppression)


@pytest.fixture
def keys(team):
    _, read = api_key_create(workspace=team.a, name="reader", scope="read")
    write_key, write = api_key_create(workspace=team.a, name="writer", scope="write")
    _, charlie = api_key_create(workspace=team.b, name="globex", scope="write")
    return SimpleNamespace(read=read, write=write, charlie=charlie, write_key=write_key)


def bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
