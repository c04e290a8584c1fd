"""An unsubscribe is never lost: with the database unreachable it is queued in Redis, with Redis
unreachable too it is spooled to disk, and the periodic task applies it once the database is back.

The web node is a real gunicorn process whose DATABASE_URL points at a port nobody listens on
(the database "failing over"); the test's own Postgres stays up, so the worker can apply the
queue to it afterwards.
"""

import json
import time

import pytest
import requests

from common.local_services import free_port
from subscribers import unsubscribe_queue
from subscribers.models import AuditEntry, Subscriber
from subscribers.tasks import apply_queued_unsubscribes
from subscribers.tokens import make_unsubscribe_token
from tests.factories import ListMembershipFactory, MailingListFactory, SubscriberFactory
from tests.workers import running_web, running_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def unreachable_database() -> str:
    return f"postgres://herald@127.0.0.1:{free_port()}/herald"


@pytest.fixture
def reader(team):
    news = MailingListFactory(workspace=team.a, name="News")
    subscriber = SubscriberFactory(workspace=team.a, email="reader@example.net")
    ListMembershipFactory(mailing_list=news, subscriber=subscriber)
    return subscriber


def token_for(subscriber, campaign_id=None):
    return make_unsubscribe_token(
        workspace_id=subscriber.workspace_id, subscriber_id=subscriber.pk, campaign_id=campaign_id
    )


def queued_entries():
    from django_redis import get_redis_connection

    return [json.loads(raw) for raw in get_redis_connection("default").lrange(unsubscribe_queue.QUEUE_KEY, 0, -1)]


def test_unsubscribes_taken_while_the_database_is_down_are_applied_when_it_returns(reader, tmp_path):
    spool = tmp_path / "spool"
    with running_web(extra_env={"DATABASE_URL": unreachable_database(), "UNSUBSCRIBE_SPOOL_DIR": str(spool)}) as web:
        # The page itself still renders, and both ways to unsubscribe answer with success.
        page = requests.get(f"{web.url}/u/{token_for(reader)}/", timeout=15)
        assert page.status_code == 200 and "Unsubscribe?" in page.text
        one_click = requests.post(
            f"{web.url}/u/{token_for(reader, campaign_id=7)}/", data={"List-Unsubscribe": "One-Click"}, timeout=15
        )
        assert one_click.status_code == 200, one_click.text
        button = requests.post(f"{web.url}/u/{token_for(reader)}/", timeout=15)
        assert button.status_code == 200 and "You are unsubscribed" in button.text
        # A forged token is still refused, outage or not.
        forged = requests.post(f"{web.url}/u/{token_for(reader)[:-2]}zz/", data={"List-Unsubscribe": "One-Click"})
        assert forged.status_code == 404
    reader.refresh_from_db()
    assert reader.status == "active"  # nothing reached the database...
    entries = queued_entries()
    assert [(e["subscriber_id"], e["campaign_id"]) for e in entries] == [(reader.pk, 7), (reader.pk, None)]
    assert not spool.exists()  # ...and Redis took them, so nothing was spooled

    # The database is back: the beat task, run by a real worker on the default queue, applies them.
    with running_worker(queues=("default",)):
        apply_queued_unsubscribes.delay()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Subscriber.objects.get(pk=reader.pk).status != "unsubscribed":
            time.sleep(0.2)
    reader.refresh_from_db()
    assert reader.status == "unsubscribed"
    assert reader.memberships.get().status == "unsubscribed"
    assert queued_entries() == []
    entry = AuditEntry.objects.get(subscriber_id=reader.pk, action="unsubscribe")
    assert "one-click" in entry.changes["method"] and "campaign 7" in entry.changes["method"]


def test_with_redis_down_too_the_unsubscribe_is_spooled_to_disk_then_applied(reader, tmp_path, settings):
    spool = tmp_path / "spool"
    environment = {
        "DATABASE_URL": unreachable_database(),
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "UNSUBSCRIBE_SPOOL_DIR": str(spool),
    }
    with running_web(extra_env=environment) as web:
        response = requests.post(
            f"{web.url}/u/{token_for(reader)}/",
            data="List-Unsubscribe=One-Click",
            timeout=30,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.text
    lines = (spool / unsubscribe_queue.SPOOL_NAME).read_text().splitlines()
    assert [json.loads(line)["subscriber_id"] for line in lines] == [reader.pk]
    reader.refresh_from_db()
    assert reader.status == "active"

    settings.UNSUBSCRIBE_SPOOL_DIR = spool
    result = apply_queued_unsubscribes()
    assert result == {"applied": 1, "rejected": 0, "remaining": 0}
    reader.refresh_from_db()
    assert reader.status == "unsubscribed"
    assert list(spool.glob("unsubscribes*")) == []


def test_a_drain_that_hits_the_outage_again_keeps_what_it_did_not_apply(reader, tmp_path, settings, team):
    settings.UNSUBSCRIBE_SPOOL_DIR = tmp_path
    other = SubscriberFactory(workspace=team.a, email="other@example.net")
    for subscriber in (reader, other):
        unsubscribe_queue.enqueue(
            {"workspace_id": team.a.id, "subscriber_id": subscriber.pk, "method": "test", "at": None}
        )
    unsubscribe_queue.spool_append(json.dumps({"workspace_id": team.a.id, "subscriber_id": other.pk}))
    unsubscribe_queue.spool_append("not json at all")

    from django.db import DatabaseError

    calls = []

    def flaky(*, entry):
        calls.append(entry["subscriber_id"])
        if len(calls) == 2:
            raise DatabaseError("failing over")
        return real(entry=entry)

    from subscribers import services

    real = services.unsubscribe_apply
    services.unsubscribe_apply = flaky
    try:
        result = unsubscribe_queue.drain()
    finally:
        services.unsubscribe_apply = real
    # The spool's good line was applied, its bad line set aside; then the database "failed".
    assert result.applied == 1 and result.rejected == 1
    assert len(queued_entries()) == 2  # neither Redis entry was lost
    second = unsubscribe_queue.drain()
    assert second.applied == 2 and second.remaining == 0
    assert Subscriber.objects.filter(pk__in=[reader.pk, other.pk], status="unsubscribed").count() == 2
    assert (tmp_path / "unsubscribes.jsonl").exists() is False
    assert [p.name.endswith(".rejected") for p in tmp_path.glob("unsubscribes*")] == [True]


def test_a_read_only_database_during_failover_queues_the_unsubscribe(reader, settings, tmp_path):
    """A standby that was promoted late still answers, but refuses writes: the unsubscribe waits."""
    from django.db import connection

    from subscribers.services import unsubscribe_request

    settings.UNSUBSCRIBE_SPOOL_DIR = tmp_path
    with connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")
    try:
        outcome = unsubscribe_request(
            workspace_id=reader.workspace_id, subscriber_id=reader.pk, method="one-click (RFC 8058)"
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")
    assert outcome == "queued"
    assert Subscriber.objects.get(pk=reader.pk).status == "active"
    assert apply_queued_unsubscribes()["applied"] == 1
    assert Subscriber.objects.get(pk=reader.pk).status == "unsubscribed"
