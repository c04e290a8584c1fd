"""The campaigns JSON API: templates, campaigns and their lifecycle, transactional sends."""

from __future__ import annotations

import json

import pytest

from accounts.models import ApiKey
from accounts.services import api_key_create
from campaigns.models import Campaign, Template, TransactionalMessage
from common.smtp_sink import SmtpSink
from tests.factories import (
    CampaignFactory,
    ListMembershipFactory,
    MailingListFactory,
    RelayFactory,
    SenderFactory,
    TemplateFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(team):
    _, write_a = api_key_create(workspace=team.a, name="write", scope=ApiKey.Scope.WRITE)
    _, read_a = api_key_create(workspace=team.a, name="read", scope=ApiKey.Scope.READ)
    _, write_b = api_key_create(workspace=team.b, name="charlie", scope=ApiKey.Scope.WRITE)
    return {"write": write_a, "read": read_a, "stranger": write_b}


def call(client, method, path, key, body=None, **headers):
    kwargs = {"HTTP_AUTHORIZATION": f"Bearer {key}", **headers}
    if body is not None:
        kwargs["data"] = json.dumps(body)
        kwargs["content_type"] = "application/json"
    return getattr(client, method)(f"/api{path}", **kwargs)


@pytest.fixture
def objects(team):
    mailing_list = MailingListFactory(workspace=team.a)
    ListMembershipFactory(mailing_list=mailing_list)
    RelayFactory(workspace=team.a)
    template = TemplateFactory(workspace=team.a)
    campaign = CampaignFactory(workspace=team.a)
    campaign.lists.set([mailing_list])
    return {"template": template, "campaign": campaign, "list": mailing_list, "sender": campaign.sender}


def endpoints(objects) -> list[tuple[str, str, dict | None, bool]]:
    """(method, path, body, is_write) for every endpoint touching one of workspace A's objects."""
    t, c = objects["template"].pk, objects["campaign"].pk
    return [
        ("get", f"/templates/{t}", None, False),
        ("patch", f"/templates/{t}", {"name": "x"}, True),
        ("delete", f"/templates/{t}", None, True),
        ("get", f"/campaigns/{c}", None, False),
        ("patch", f"/campaigns/{c}", {"name": "x"}, True),
        ("post", f"/campaigns/{c}/schedule", {}, True),
        ("post", f"/campaigns/{c}/pause", None, True),
        ("post", f"/campaigns/{c}/resume", None, True),
        ("post", f"/campaigns/{c}/cancel", None, True),
        (
            "post",
            "/messages",
            {"template_id": t, "sender_id": objects["sender"].pk, "to": "someone@example.org"},
            True,
        ),
        ("post", "/campaigns", {"name": "n", "template_id": t}, True),
    ]


def test_another_workspaces_key_reaches_none_of_it(client, keys, objects):
    for method, path, body, _ in endpoints(objects):
        response = call(client, method, path, keys["stranger"], body)
        assert response.status_code == 404, (method, path, response.content)
    assert call(client, "get", "/campaigns", keys["stranger"]).json() == []
    assert call(client, "get", "/templates", keys["stranger"]).json() == []
    assert Template.objects.filter(pk=objects["template"].pk, name=objects["template"].name).exists()
    assert Campaign.objects.get(pk=objects["campaign"].pk).status == "draft"


def test_guessed_ids_answer_404(client, keys, objects):
    for path in ("/templates/999999", "/campaigns/999999", "/campaigns/999999/schedule"):
        method = "post" if path.endswith("schedule") else "get"
        assert call(client, method, path, keys["write"], {} if method == "post" else None).status_code == 404


def test_a_read_only_key_reads_but_cannot_write(client, keys, objects):
    for method, path, body, is_write in endpoints(objects):
        response = call(client, method, path, keys["read"], body)
        assert response.status_code == (403 if is_write else 200), (method, path, response.content)
    assert (
        call(client, "post", "/templates", keys["read"], {"name": "t", "subject": "s", "html": "h"}).status_code == 403
    )
    assert not TransactionalMessage.objects.exists()


def test_templates_crud_with_checks(client, keys, team):
    created = call(
        client, "post", "/templates", keys["write"], {"name": "Welcome", "subject": "Hi", "html": "<p>x</p>"}
    )
    assert created.status_code == 201
    template_id = created.json()["id"]
    bad = call(
        client, "post", "/templates", keys["write"], {"name": "Bad", "subject": "Hi", "html": "{{ x.__class__ }}"}
    )
    assert bad.status_code == 400 and bad.json()["detail"]
    broken = call(client, "patch", f"/templates/{template_id}", keys["write"], {"html": "{% if %}"})
    assert broken.status_code == 400
    assert Template.objects.get(pk=template_id).html == "<p>x</p>"
    assert (
        call(client, "patch", f"/templates/{template_id}", keys["write"], {"subject": "Hello"}).json()["subject"]
        == "Hello"
    )
    assert [t["name"] for t in call(client, "get", "/templates", keys["write"]).json()] == ["Welcome"]
    assert call(client, "delete", f"/templates/{template_id}", keys["write"]).status_code == 204
    assert not Template.objects.filter(workspace=team.a).exists()


def test_creating_a_campaign_is_idempotent_with_a_key(client, keys, objects, team):
    body = {
        "name": "Launch",
        "template_id": objects["template"].pk,
        "list_ids": [objects["list"].pk],
        "sender_id": objects["sender"].pk,
    }
    first = call(client, "post", "/campaigns", keys["write"], body, HTTP_IDEMPOTENCY_KEY="launch-1")
    again = call(client, "post", "/campaigns", keys["write"], body, HTTP_IDEMPOTENCY_KEY="launch-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Campaign.objects.filter(workspace=team.a, name="Launch").count() == 1
    data = first.json()
    assert data["subject"] == objects["template"].subject and data["list_ids"] == [objects["list"].pk]


def test_campaign_lifecycle_through_the_api(client, keys, objects):
    campaign = objects["campaign"]
    updated = call(client, "patch", f"/campaigns/{campaign.pk}", keys["write"], {"subject": "Changed"})
    assert updated.status_code == 200 and updated.json()["subject"] == "Changed"
    later = "2099-01-01T10:00:00Z"
    scheduled = call(client, "post", f"/campaigns/{campaign.pk}/schedule", keys["write"], {"send_at": later})
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"
    assert call(client, "patch", f"/campaigns/{campaign.pk}", keys["write"], {"subject": "No"}).status_code == 409
    assert call(client, "post", f"/campaigns/{campaign.pk}/pause", keys["write"]).status_code == 409
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", recipient_count=10, sent_count=4)
    paused = call(client, "post", f"/campaigns/{campaign.pk}/pause", keys["write"])
    assert paused.json()["status"] == "paused" and paused.json()["progress"]["sent"] == 4
    assert call(client, "post", f"/campaigns/{campaign.pk}/resume", keys["write"]).json()["status"] == "sending"
    cancelled = call(client, "post", f"/campaigns/{campaign.pk}/cancel", keys["write"])
    assert cancelled.json()["status"] == "cancelled"
    detail = call(client, "get", f"/campaigns/{campaign.pk}", keys["write"]).json()
    assert detail["progress"]["recipients"] == 10 and detail["status"] == "cancelled"


def test_scheduling_without_a_sender_is_refused_with_the_reason(client, keys, objects):
    campaign = objects["campaign"]
    Campaign.objects.filter(pk=campaign.pk).update(sender=None)
    response = call(client, "post", f"/campaigns/{campaign.pk}/schedule", keys["write"], {})
    assert response.status_code == 409 and "sender" in response.json()["detail"]


def test_bad_campaign_input_is_refused_and_nothing_is_saved(client, keys, objects, team):
    foreign = MailingListFactory(workspace=team.b)
    response = call(
        client, "post", "/campaigns", keys["write"], {"name": "x", "subject": "s", "list_ids": [foreign.pk]}
    )
    assert response.status_code == 400
    response = call(
        client, "post", "/campaigns", keys["write"], {"name": "x", "subject": "s", "rate_limit_per_second": 0}
    )
    assert response.status_code == 422
    assert Campaign.objects.filter(workspace=team.a).count() == 1


def test_a_transactional_message_is_sent_once_per_idempotency_key(client, keys, team, tmp_path):
    with SmtpSink(tmp_path / "sink") as sink:
        RelayFactory(workspace=team.a, port=sink.port)
        sender = SenderFactory(workspace=team.a, email="receipts@shop.test")
        template = TemplateFactory(
            workspace=team.a,
            subject="Receipt for {{ subscriber.first_name }}",
            html="<p>Order {{ subscriber.order }}</p>",
        )
        body = {
            "template_id": template.pk,
            "sender_id": sender.pk,
            "to": "Buyer@Example.org",
            "name": "Ann Buyer",
            "attributes": {"order": "A-17"},
        }
        first = call(client, "post", "/messages", keys["write"], body, HTTP_IDEMPOTENCY_KEY="order-A-17")
        again = call(client, "post", "/messages", keys["write"], body, HTTP_IDEMPOTENCY_KEY="order-A-17")
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json() and first.json()["status"] == "sent"
        messages = sink.messages()
        assert len(messages) == 1
        assert messages[0]["Subject"] == "Receipt for Ann"
        assert messages[0]["X-Sink-Rcpt-To"] == "buyer@example.org"
        assert "Order A-17" in messages[0].get_body(("html",)).get_content()
        assert messages[0]["Message-ID"] == first.json()["message_id"]
        # Not a subscriber: no list to leave.
        assert messages[0]["List-Unsubscribe"] is None and messages[0]["X-Herald-Delivery"]


def test_a_transactional_send_without_a_verified_sender_is_refused(client, keys, team):
    RelayFactory(workspace=team.a)
    sender = SenderFactory(workspace=team.a, verified_at=None)
    template = TemplateFactory(workspace=team.a)
    body = {"template_id": template.pk, "sender_id": sender.pk, "to": "a@example.org"}
    response = call(client, "post", "/messages", keys["write"], body)
    assert response.status_code == 400 and "not verified" in response.json()["detail"]
    assert not TransactionalMessage.objects.exists()
