"""Who a campaign to an audience may mail: the selector the delivery ledger is snapshotted from."""

import pytest

from subscribers.models import ListMembership, Segment, Subscriber, Suppression
from subscribers.selectors import is_suppressed, subscribers_sendable
from subscribers.services import (
    erasure_digest,
    subscriber_record_complaint,
    subscriber_record_hard_bounce,
    subscriber_unsubscribe,
    suppression_add,
)
from tests.factories import ListMembershipFactory, MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def emails(queryset):
    return sorted(queryset.values_list("email", flat=True))


@pytest.fixture
def newsletter(team):
    return MailingListFactory(workspace=team.a, name="Newsletter")


def member_of(mailing_list, email, **kwargs):
    subscriber = SubscriberFactory(workspace=mailing_list.workspace, email=email)
    ListMembershipFactory(mailing_list=mailing_list, subscriber=subscriber, **kwargs)
    return subscriber


def test_only_confirmed_members_of_the_chosen_lists_are_mailed(team, newsletter):
    other_list = MailingListFactory(workspace=team.a, name="Other")
    member_of(newsletter, "confirmed@example.org")
    member_of(newsletter, "pending@example.org", status=ListMembership.Status.UNCONFIRMED)
    member_of(newsletter, "left@example.org", status=ListMembership.Status.UNSUBSCRIBED)
    member_of(other_list, "elsewhere@example.org")
    audience = subscribers_sendable(workspace_id=team.a.id, list_ids=[newsletter.id])
    assert emails(audience) == ["confirmed@example.org"]


def test_unsubscribed_bounced_complained_and_blocklisted_subscribers_are_excluded(team, newsletter):
    member_of(newsletter, "ok@example.org")
    for status in ["unsubscribed", "bounced", "complained", "blocklisted"]:
        member_of(newsletter, f"{status}@example.org").__class__.objects.filter(email=f"{status}@example.org").update(
            status=status
        )
    assert emails(subscribers_sendable(workspace_id=team.a.id, list_ids=[newsletter.id])) == ["ok@example.org"]


def test_suppressed_addresses_and_domains_are_excluded(team, newsletter):
    member_of(newsletter, "ok@example.org")
    member_of(newsletter, "suppressed@example.org")
    member_of(newsletter, "anyone@blocked.example")
    suppression_add(workspace_id=team.a.id, value="Suppressed@Example.org")
    suppression_add(workspace_id=team.a.id, value="blocked.example", kind=Suppression.Kind.DOMAIN)
    assert emails(subscribers_sendable(workspace_id=team.a.id, list_ids=[newsletter.id])) == ["ok@example.org"]


def test_another_workspaces_suppression_does_not_apply(team, newsletter):
    member_of(newsletter, "shared@example.org")
    suppression_add(workspace_id=team.b.id, value="shared@example.org")
    assert emails(subscribers_sendable(workspace_id=team.a.id, list_ids=[newsletter.id])) == ["shared@example.org"]


def test_excluded_lists_and_segments_narrow_the_audience(team, newsletter):
    vips = MailingListFactory(workspace=team.a, name="VIPs")
    member_of(newsletter, "a@example.org")
    b = member_of(newsletter, "b@example.org")
    ListMembershipFactory(mailing_list=vips, subscriber=b)
    c = member_of(newsletter, "c@example.org")
    Subscriber.objects.filter(pk=c.pk).update(attributes={"plan": "pro"})
    without_vips = subscribers_sendable(workspace_id=team.a.id, list_ids=[newsletter.id], exclude_list_ids=[vips.id])
    assert emails(without_vips) == ["a@example.org", "c@example.org"]
    pro = Segment.objects.create(
        workspace=team.a,
        name="Pro",
        rules={"match": "all", "conditions": [{"field": "attribute:plan", "op": "eq", "value": "pro"}]},
    )
    assert emails(subscribers_sendable(workspace_id=team.a.id, list_ids=[newsletter.id], segment=pro)) == [
        "c@example.org"
    ]


def test_no_lists_and_no_segment_is_an_empty_audience_not_everyone(team, newsletter):
    member_of(newsletter, "a@example.org")
    assert not subscribers_sendable(workspace_id=team.a.id).exists()


def test_unsubscribing_twice_changes_nothing_the_second_time(team, newsletter):
    subscriber = member_of(newsletter, "a@example.org")
    assert subscriber_unsubscribe(subscriber_id=subscriber.id, workspace_id=team.a.id) is True
    assert subscriber_unsubscribe(subscriber_id=subscriber.id, workspace_id=team.a.id) is False
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert ListMembership.objects.get(subscriber=subscriber).status == ListMembership.Status.UNSUBSCRIBED


def test_unsubscribing_from_one_list_keeps_the_others(team, newsletter):
    other = MailingListFactory(workspace=team.a, name="Other")
    subscriber = member_of(newsletter, "a@example.org")
    ListMembershipFactory(mailing_list=other, subscriber=subscriber)
    subscriber_unsubscribe(subscriber_id=subscriber.id, workspace_id=team.a.id, list_ids=[newsletter.id])
    assert emails(subscribers_sendable(workspace_id=team.a.id, list_ids=[other.id])) == ["a@example.org"]
    assert not subscribers_sendable(workspace_id=team.a.id, list_ids=[newsletter.id]).exists()


def test_a_hard_bounce_and_a_complaint_mark_the_subscriber_and_suppress_the_address(team, newsletter):
    member_of(newsletter, "gone@example.org")
    member_of(newsletter, "angry@example.org")
    subscriber_record_hard_bounce(workspace_id=team.a.id, email="GONE@example.org", detail="550 5.1.1 no such user")
    subscriber_record_complaint(workspace_id=team.a.id, email="angry@example.org")
    assert Subscriber.objects.get(email="gone@example.org").status == Subscriber.Status.BOUNCED
    assert Subscriber.objects.get(email="angry@example.org").status == Subscriber.Status.COMPLAINED
    assert is_suppressed(workspace_id=team.a.id, email="gone@example.org")
    assert Suppression.objects.get(value="angry@example.org").reason == Suppression.Reason.COMPLAINT
    assert not is_suppressed(workspace_id=team.b.id, email="gone@example.org")


def test_an_erased_address_is_recognised_by_its_hash_alone(team):
    suppression_add(
        workspace_id=team.a.id,
        value=erasure_digest(workspace_id=team.a.id, email="erased@example.org"),
        kind=Suppression.Kind.HASH,
        reason=Suppression.Reason.ERASED,
    )
    assert is_suppressed(workspace_id=team.a.id, email="Erased@example.org")
    assert not Suppression.objects.filter(value__contains="erased@").exists()


def test_addresses_must_be_stored_lower_cased(team):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        Subscriber.objects.create(workspace=team.a, email="Mixed@Example.org")
