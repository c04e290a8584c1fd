"""Segment rules compile to one ORM filter; bad rules get a message a marketer can act on."""

from datetime import timedelta

import pytest
from django.utils import timezone

from subscribers.models import Subscriber
from subscribers.segments import SegmentRuleError, segment_q, validate_rules
from tests.factories import ListMembershipFactory, MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def matching(workspace, *conditions, match="all"):
    rules = {"match": match, "conditions": list(conditions)}
    return sorted(
        Subscriber.objects.filter(workspace=workspace).filter(segment_q(rules)).values_list("email", flat=True)
    )


@pytest.fixture
def people(team):
    ann = SubscriberFactory(
        workspace=team.a, email="ann@shop.example", name="Ann", attributes={"plan": "pro", "age": 31}
    )
    ben = SubscriberFactory(
        workspace=team.a, email="ben@mail.example", name="Ben", attributes={"plan": "free", "age": 19}
    )
    cy = SubscriberFactory(workspace=team.a, email="cy@shop.example", name="Cy", attributes={})
    Subscriber.objects.filter(pk=cy.pk).update(created_at=timezone.now() - timedelta(days=90))
    return ann, ben, cy


def test_text_conditions(team, people):
    assert matching(team.a, {"field": "email", "op": "ends_with", "value": "@SHOP.example"}) == [
        "ann@shop.example",
        "cy@shop.example",
    ]
    assert matching(team.a, {"field": "name", "op": "eq", "value": "ben"}) == ["ben@mail.example"]
    assert matching(team.a, {"field": "name", "op": "neq", "value": "ben"}) == ["ann@shop.example", "cy@shop.example"]


def test_attribute_conditions(team, people):
    assert matching(team.a, {"field": "attribute:plan", "op": "eq", "value": "pro"}) == ["ann@shop.example"]
    assert matching(team.a, {"field": "attribute:age", "op": "gt", "value": 20}) == ["ann@shop.example"]
    assert matching(team.a, {"field": "attribute:plan", "op": "exists"}) == ["ann@shop.example", "ben@mail.example"]


def test_any_and_all(team, people):
    pro = {"field": "attribute:plan", "op": "eq", "value": "pro"}
    ben = {"field": "name", "op": "eq", "value": "Ben"}
    assert matching(team.a, pro, ben, match="any") == ["ann@shop.example", "ben@mail.example"]
    assert matching(team.a, pro, ben, match="all") == []


def test_dates_and_lists(team, people):
    ann, _, _ = people
    vip = MailingListFactory(workspace=team.a)
    ListMembershipFactory(mailing_list=vip, subscriber=ann)
    assert matching(team.a, {"field": "created_at", "op": "before_days", "value": 30}) == ["cy@shop.example"]
    assert matching(team.a, {"field": "list", "op": "in_list", "value": vip.id}) == ["ann@shop.example"]
    assert matching(team.a, {"field": "list", "op": "not_in_list", "value": vip.id}) == [
        "ben@mail.example",
        "cy@shop.example",
    ]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("everyone", "must be an object"),
        ({"match": "some"}, "'match' must be"),
        ({"conditions": [{"field": "password", "op": "eq", "value": "x"}]}, "unknown field 'password'"),
        ({"conditions": [{"field": "email", "op": "gt", "value": "x"}]}, "cannot be compared"),
        ({"conditions": [{"field": "email", "op": "eq"}]}, "a value is required"),
        ({"conditions": [{"field": "created_at", "op": "within_days", "value": "soon"}]}, "whole number"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(rules, message):
    with pytest.raises(SegmentRuleError, match=message):
        validate_rules(rules)
