"""Bounce webhooks: Herald's signed JSON webhook per workspace, and ESP webhooks through anymail."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from campaigns.bounces import workspace_webhook_secret
from campaigns.models import Campaign, Delivery
from campaigns.webhooks import signature_for
from subscribers.models import Subscriber, Suppression
from tests.campaigns.bounce_helpers import delivery_of, sent_campaign, token_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(team):
    return sent_campaign(workspace=team.a, count=5)


def url(workspace):
    return f"/webhooks/bounces/{workspace.pk}/"


def post(client, workspace, payload, *, secret=None, signature=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    signature = signature or signature_for(body, secret or workspace_webhook_secret(workspace.pk))
    return client.post(url(workspace), data=body, content_type="application/json", HTTP_X_HERALD_SIGNATURE=signature)


def bounce_event(delivery, **fields):
    return {"id": f"evt-{delivery.pk}", "type": "bounce", "hard": True, "delivery_token": token_of(delivery),
            "detail": "550 5.1.1 unknown user", **fields}  # fmt: skip


def payload(*events):
    return {"timestamp": int(time.time()), "events": list(events)}


def state(campaign):
    """Everything a webhook may change, to prove a refused one changed nothing."""
    campaign.refresh_from_db()
    return (
        sorted(Delivery.objects.filter(campaign=campaign).values_list("id", "status", "smtp_response")),
        (campaign.sent_count, campaign.bounced_count, campaign.complained_count, campaign.status),
        sorted(Subscriber.objects.filter(workspace=campaign.workspace).values_list("email", "status")),
        Suppression.objects.count(),
    )


def test_a_signed_bounce_is_recorded(client, campaign):
    delivery = delivery_of(campaign)
    response = post(client, campaign.workspace, payload(bounce_event(delivery)))
    assert response.status_code == 200
    assert response.json() == {"received": 1, "recorded": 1, "duplicates": 0, "unmatched": 0}
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.BOUNCED
    assert "unknown user" in delivery.smtp_response
    assert Subscriber.objects.get(pk=delivery.subscriber_id).status == Subscriber.Status.BOUNCED


def test_a_signed_complaint_by_message_id_and_a_bounce_by_address(client, campaign):
    first, second = Delivery.objects.filter(campaign=campaign).order_by("id")[:2]
    events = [
        {"id": "c1", "type": "complaint", "message_id": first.message_id},
        {"id": "b1", "type": "bounce", "email": second.email},
    ]
    assert post(client, campaign.workspace, payload(*events)).json()["recorded"] == 2
    campaign.refresh_from_db()
    assert (campaign.complained_count, campaign.bounced_count) == (1, 1)


def test_a_single_event_without_a_list_is_accepted(client, campaign):
    single = {"timestamp": int(time.time()), **bounce_event(delivery_of(campaign))}
    assert post(client, campaign.workspace, single).json()["recorded"] == 1


def test_an_address_herald_never_mailed_is_suppressed_in_that_workspace(client, team):
    event = {"id": "x", "type": "bounce", "email": "Elsewhere@Example.org"}
    assert post(client, team.a, payload(event)).json()["recorded"] == 1
    assert Suppression.objects.filter(workspace=team.a, value="elsewhere@example.org").exists()
    assert not Suppression.objects.filter(workspace=team.b).exists()


def test_the_same_webhook_twice_counts_once(client, campaign):
    body = payload(bounce_event(delivery_of(campaign)))
    assert post(client, campaign.workspace, body).json()["recorded"] == 1
    assert post(client, campaign.workspace, body).json() == {
        "received": 1,
        "recorded": 0,
        "duplicates": 1,
        "unmatched": 0,
    }
    again_with_new_id = payload(bounce_event(delivery_of(campaign), id="another-id"))
    assert post(client, campaign.workspace, again_with_new_id).json()["duplicates"] == 1
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.bounced_count) == (4, 1)
    assert Suppression.objects.count() == 1


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, "sha256=deadbeef", "md5=abc"],
)
def test_a_bad_signature_is_refused_and_changes_nothing(client, campaign, signature):
    before = state(campaign)
    body = json.dumps(payload(bounce_event(delivery_of(campaign)))).encode()
    response = client.post(
        url(campaign.workspace), data=body, content_type="application/json", HTTP_X_HERALD_SIGNATURE=signature
    )
    assert response.status_code == 403
    assert state(campaign) == before


def test_another_workspaces_secret_is_refused(client, campaign, team):
    before = state(campaign)
    response = post(
        client, team.a, payload(bounce_event(delivery_of(campaign))), secret=workspace_webhook_secret(team.b.pk)
    )
    assert response.status_code == 403
    assert state(campaign) == before


def test_charlie_cannot_bounce_alices_deliveries_through_his_own_webhook(client, campaign, team):
    before = state(campaign)
    delivery = delivery_of(campaign)
    response = post(client, team.b, payload(bounce_event(delivery, email="")))
    assert response.json() == {"received": 1, "recorded": 0, "duplicates": 0, "unmatched": 1}
    assert state(campaign) == before


def test_an_old_timestamp_is_refused_as_a_replay(client, campaign):
    before = state(campaign)
    stale = {"timestamp": int(time.time()) - 3600, "events": [bounce_event(delivery_of(campaign))]}
    response = post(client, campaign.workspace, stale)
    assert response.status_code == 400
    assert "replay" in response.json()["error"]
    assert state(campaign) == before


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"events": [{"type": "bounce", "email": "a@b.c"}]}).encode(),  # no timestamp
        json.dumps({"timestamp": int(time.time()), "events": []}).encode(),
        json.dumps({"timestamp": int(time.time()), "events": [{"type": "opened", "email": "a@b.c"}]}).encode(),
        json.dumps({"timestamp": int(time.time()), "events": [{"type": "bounce"}]}).encode(),
        json.dumps({"timestamp": int(time.time()), "events": [{"type": "bounce", "email": "nope"}]}).encode(),
        json.dumps(
            {"timestamp": int(time.time()), "events": [{"type": "bounce", "email": "a@b.c", "hard": "yes"}]}
        ).encode(),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(client, campaign, body):
    before = state(campaign)
    response = post(client, campaign.workspace, None, raw=body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert state(campaign) == before


def test_one_bad_event_refuses_the_whole_body(client, campaign):
    before = state(campaign)
    good = bounce_event(delivery_of(campaign))
    response = post(client, campaign.workspace, payload(good, {"type": "bounce"}))
    assert response.status_code == 400
    assert "events[1]" in response.json()["error"]
    assert state(campaign) == before


def test_unknown_workspaces_and_other_methods(client, campaign):
    assert client.post("/webhooks/bounces/999999/", data=b"{}", content_type="application/json").status_code == 404
    assert client.get(url(campaign.workspace)).status_code == 405


# --- ESP webhooks through anymail ---------------------------------------------------------------


@pytest.fixture
def anymail_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "esp:s3cret", "MAILGUN_WEBHOOK_SIGNING_KEY": "mailgun-key"}
    return settings


def basic_auth(credentials="esp:s3cret"):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def postmark_bounce(email):
    return {
        "RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "ID": 42, "MessageID": "pm-0001",
        "Email": email, "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "BouncedAt": "2026-12-01T10:00:00Z", "Metadata": {}, "Tag": "",
    }  # fmt: skip


def test_esp_webhooks_are_refused_until_configured(client, campaign, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    before = state(campaign)
    response = client.post(
        "/webhooks/esp/postmark/tracking/",
        data=json.dumps(postmark_bounce(delivery_of(campaign).email)),
        content_type="application/json",
    )
    assert response.status_code == 404
    assert state(campaign) == before


def test_a_postmark_bounce_is_recorded(client, campaign, anymail_settings):
    delivery = delivery_of(campaign)
    response = client.post(
        "/webhooks/esp/postmark/tracking/",
        data=json.dumps(postmark_bounce(delivery.email)),
        content_type="application/json",
        **basic_auth(),
    )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.BOUNCED
    assert "does not exist" in delivery.smtp_response and "Postmark" in delivery.smtp_response


def test_a_postmark_webhook_with_the_wrong_password_changes_nothing(client, campaign, anymail_settings):
    before = state(campaign)
    response = client.post(
        "/webhooks/esp/postmark/tracking/",
        data=json.dumps(postmark_bounce(delivery_of(campaign).email)),
        content_type="application/json",
        **basic_auth("esp:wrong"),
    )
    assert response.status_code in (400, 403)
    assert state(campaign) == before


def mailgun_event(delivery, *, event="failed", severity="permanent", key="mailgun-key"):
    timestamp, token = str(int(time.time())), "a" * 50
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": event, "severity": severity, "id": "mg-evt-1", "timestamp": float(timestamp),
            "recipient": delivery.email,
            "message": {"headers": {"message-id": delivery.message_id.strip("<>"), "to": delivery.email}},
            "delivery-status": {"code": 550, "message": "5.1.1 mailbox does not exist", "description": ""},
            "user-variables": {},
        },
    }  # fmt: skip


def test_a_mailgun_bounce_is_matched_by_message_id_and_counts_once(client, campaign, anymail_settings):
    delivery = delivery_of(campaign)
    Delivery.objects.filter(campaign=campaign).exclude(pk=delivery.pk).update(
        email=delivery.email
    )  # address is ambiguous
    for _ in range(2):
        response = client.post(
            "/webhooks/esp/mailgun/tracking/", data=json.dumps(mailgun_event(delivery)),
            content_type="application/json", **basic_auth(),
        )  # fmt: skip
        assert response.status_code == 200
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.BOUNCED
    assert Campaign.objects.get(pk=campaign.pk).bounced_count == 1


def test_a_mailgun_complaint(client, campaign, anymail_settings):
    delivery = delivery_of(campaign)
    response = client.post(
        "/webhooks/esp/mailgun/tracking/", data=json.dumps(mailgun_event(delivery, event="complained", severity="")),
        content_type="application/json", **basic_auth(),
    )  # fmt: skip
    assert response.status_code == 200
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.COMPLAINED


def test_a_mailgun_event_with_a_bad_signature_changes_nothing(client, campaign, anymail_settings):
    before = state(campaign)
    response = client.post(
        "/webhooks/esp/mailgun/tracking/", data=json.dumps(mailgun_event(delivery_of(campaign), key="guessed")),
        content_type="application/json", **basic_auth(),
    )  # fmt: skip
    assert response.status_code in (400, 403)
    assert state(campaign) == before


def test_an_unknown_provider_is_404(client, anymail_settings):
    assert (
        client.post("/webhooks/esp/nosuchesp/tracking/", data=b"{}", content_type="application/json").status_code == 404
    )


@pytest.mark.parametrize("provider", ["postmark", "mailgun", "sparkpost", "mailjet", "brevo"])
def test_a_malformed_esp_body_is_a_clear_400_not_a_500(client, campaign, anymail_settings, provider):
    before = state(campaign)
    response = client.post(
        f"/webhooks/esp/{provider}/tracking/", data=b"{not json", content_type="application/json", **basic_auth()
    )
    assert response.status_code == 400
    assert state(campaign) == before


def test_a_postmark_body_of_the_wrong_shape_is_a_400(client, campaign, anymail_settings):
    response = client.post(
        "/webhooks/esp/postmark/tracking/", data=b"[1, 2]", content_type="application/json", **basic_auth()
    )
    assert response.status_code == 400
