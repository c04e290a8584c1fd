"""The subscriber table: search, filters, keyset pagination at a constant query count, bulk actions."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from subscribers.models import AuditEntry, ListMembership, Segment, Subscriber
from tests.factories import ListMembershipFactory, MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def emails_on(response):
    return re.findall(r'href="/subscribers/\d+/">([^<]+)</a>', response.content.decode())


def many(team, count, mailing_list=None, prefix="p"):
    rows = Subscriber.objects.bulk_create(
        Subscriber(workspace=team.a, email=f"{prefix}{n:04d}@example.org", name=f"Person {n}") for n in range(count)
    )
    if mailing_list:
        ListMembership.objects.bulk_create(
            ListMembership(workspace=team.a, mailing_list=mailing_list, subscriber=s, status="confirmed") for s in rows
        )
    return rows


def test_the_empty_table_explains_itself(alice_client):
    response = alice_client.get("/subscribers/")
    assert "No subscribers yet" in response.content.decode()


def test_search_matches_email_and_name(alice_client, team):
    SubscriberFactory(workspace=team.a, email="grace@navy.example", name="Grace Hopper")
    SubscriberFactory(workspace=team.a, email="alan@example.org", name="Alan Turing")
    assert emails_on(alice_client.get("/subscribers/", {"q": "NAVY"})) == ["grace@navy.example"]
    assert emails_on(alice_client.get("/subscribers/", {"q": "turing"})) == ["alan@example.org"]
    assert "No matches" in alice_client.get("/subscribers/", {"q": "nobody"}).content.decode()


def test_filters_by_list_status_and_segment(alice_client, team):
    vips = MailingListFactory(workspace=team.a, name="VIPs")
    on_list = SubscriberFactory(workspace=team.a, email="vip@example.org", name="V")
    ListMembershipFactory(mailing_list=vips, subscriber=on_list)
    left = SubscriberFactory(workspace=team.a, email="left@example.org", name="L")
    ListMembershipFactory(mailing_list=vips, subscriber=left, status="unsubscribed")
    gone = SubscriberFactory(workspace=team.a, email="gone@example.org", name="G")
    Subscriber.objects.filter(pk=gone.pk).update(status="unsubscribed")
    segment = Segment.objects.create(
        workspace=team.a, name="G", rules={"conditions": [{"field": "email", "op": "starts_with", "value": "gone"}]}
    )
    assert emails_on(alice_client.get("/subscribers/", {"list": vips.pk})) == ["vip@example.org"]
    assert emails_on(alice_client.get("/subscribers/", {"status": "unsubscribed"})) == ["gone@example.org"]
    assert emails_on(alice_client.get("/subscribers/", {"segment": segment.pk})) == ["gone@example.org"]


def test_pages_follow_ids_newest_first_without_offset(alice_client, team):
    rows = many(team, 120)
    newest_first = [s.email for s in sorted(rows, key=lambda s: -s.pk)]
    first = alice_client.get("/subscribers/")
    assert emails_on(first) == newest_first[:50]
    after = re.search(r'href="\?after=(\d+)"', first.content.decode()).group(1)
    second = alice_client.get("/subscribers/", {"after": after})
    assert emails_on(second) == newest_first[50:100]
    third_after = re.search(r'href="\?after=(\d+)"', second.content.decode()).group(1)
    third = alice_client.get("/subscribers/", {"after": third_after})
    assert emails_on(third) == newest_first[100:]
    assert 'rel="next"' not in third.content.decode()  # the last page has no "older" link
    before = re.search(r'href="\?before=(\d+)"', third.content.decode()).group(1)
    assert emails_on(alice_client.get("/subscribers/", {"before": before})) == newest_first[50:100]


def test_filters_survive_paging(alice_client, team):
    many(team, 60)
    page = alice_client.get("/subscribers/", {"q": "p00"}).content.decode()
    assert re.search(r'href="\?q=p00&amp;after=\d+"', page)


def test_the_query_count_does_not_grow_with_the_table_or_the_page(alice_client, team):
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    many(team, 5, newsletter)
    with CaptureQueriesContext(connection) as small:
        assert alice_client.get("/subscribers/").status_code == 200
    rows = many(team, 300, newsletter, prefix="q")
    with CaptureQueriesContext(connection) as large:
        assert alice_client.get("/subscribers/").status_code == 200
    with CaptureQueriesContext(connection) as deep:
        assert alice_client.get("/subscribers/", {"after": rows[100].pk, "list": newsletter.pk}).status_code == 200
    assert len(large) == len(small) == len(deep)
    assert len(large) <= 10
    sql = " ".join(q["sql"] for q in deep.captured_queries)
    assert "OFFSET" not in sql.upper()


def post_bulk(client, action, ids, **extra):
    return client.post("/subscribers/bulk/", {"action": action, "ids": ids, "next": "/subscribers/", **extra})


def test_bulk_actions_ask_first_then_act(alice_client, team):
    a, b, c = (SubscriberFactory(workspace=team.a, email=f"{x}@example.org") for x in "abc")
    confirm = post_bulk(alice_client, "delete", [a.pk, b.pk])
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Delete: 2 subscribers?" in page and "a@example.org" in page
    assert Subscriber.objects.filter(workspace=team.a).count() == 3
    done = post_bulk(alice_client, "delete", [a.pk, b.pk], confirm="yes")
    assert done.status_code == 302
    assert list(Subscriber.objects.filter(workspace=team.a).values_list("email", flat=True)) == ["c@example.org"]
    assert AuditEntry.objects.filter(action="delete", subscriber_id__in=[a.pk, b.pk]).count() == 2


def test_bulk_add_remove_and_unsubscribe(alice_client, team):
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    a, b = (SubscriberFactory(workspace=team.a, email=f"{x}@example.org") for x in "ab")
    post_bulk(alice_client, "add_to_list", [a.pk, b.pk], list_id=newsletter.pk, confirm="yes")
    assert ListMembership.objects.filter(mailing_list=newsletter, status="confirmed").count() == 2
    post_bulk(alice_client, "remove_from_list", [a.pk], list_id=newsletter.pk, confirm="yes")
    assert list(ListMembership.objects.filter(mailing_list=newsletter).values_list("subscriber_id", flat=True)) == [
        b.pk
    ]
    post_bulk(alice_client, "unsubscribe", [b.pk], confirm="yes")
    b.refresh_from_db()
    assert b.status == "unsubscribed"
    assert ListMembership.objects.get(subscriber=b).status == "unsubscribed"


def test_bulk_add_without_a_list_is_refused_clearly(alice_client, team):
    a = SubscriberFactory(workspace=team.a)
    response = post_bulk(alice_client, "add_to_list", [a.pk], confirm="yes")
    assert response.status_code == 302
    assert "Choose the list." in alice_client.get("/subscribers/").content.decode()


def test_bulk_actions_skip_ids_of_other_workspaces(alice_client, team):
    mine = SubscriberFactory(workspace=team.a)
    theirs = SubscriberFactory(workspace=team.b)
    post_bulk(alice_client, "delete", [mine.pk, theirs.pk], confirm="yes")
    assert not Subscriber.objects.filter(pk=mine.pk).exists()
    assert Subscriber.objects.filter(pk=theirs.pk).exists()


def test_bulk_actions_never_redirect_off_site(alice_client, team):
    a = SubscriberFactory(workspace=team.a)
    for bad in ("https://evil.example/", "//evil.example/x"):
        response = alice_client.post("/subscribers/bulk/", {"action": "unsubscribe", "ids": [a.pk], "next": bad})
        assert response.status_code == 200  # the confirmation page
        done = alice_client.post(
            "/subscribers/bulk/", {"action": "unsubscribe", "ids": [a.pk], "next": bad, "confirm": "yes"}
        )
        assert done["Location"] == "/subscribers/"
        invalid = alice_client.post("/subscribers/bulk/", {"action": "explode", "ids": [a.pk], "next": bad})
        assert invalid["Location"] == "/subscribers/"
