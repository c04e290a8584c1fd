"""Bounce and complaint webhooks: ESPs through django-anymail, and Herald's own signed JSON webhook.

    POST /webhooks/esp/<provider>/tracking/   Mailgun, Postmark, SparkPost, Mailjet,
                                              Brevo tracking events (anymail checks the
                                              ANYMAIL_WEBHOOK_SECRET basic auth and the
                                              provider's signature); refused until configured
    POST /webhooks/bounces/<workspace id>/    a workspace's own events, signed with its secret

Both feed campaigns.bounces.bounce_intake, so a report counts once however it arrives.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import tracking as anymail_tracking
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.mailjet import MailjetTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sparkpost import SparkPostTrackingWebhookView
from django.conf import settings
from django.dispatch import receiver
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import Workspace
from campaigns.bounces import bounce_intake, webhook_event_mark, webhook_event_seen, workspace_webhook_secret
from campaigns.lib.dsn import BounceReport

logger = logging.getLogger(__name__)


class _UnreadableEvent(Exception):
    """The ESP's request could not be read (not JSON, not the provider's shape)."""


def _guarded(view_class):
    """The anymail view, with a body it cannot read answered 400 instead of a server error.

    Errors while recording (the database away) still answer 500, so the ESP retries later.
    """

    class Guarded(view_class):
        def validate_request(self, request):
            try:
                return super().validate_request(request)
            except AnymailWebhookValidationFailure:
                raise
            except Exception as error:
                raise _UnreadableEvent(str(error)) from error

        def parse_events(self, request):
            try:
                return list(super().parse_events(request))
            except Exception as error:
                raise _UnreadableEvent(str(error)) from error

    Guarded.__name__ = f"Guarded{view_class.__name__}"
    return Guarded


ESP_VIEWS = {
    name: _guarded(view)
    for name, view in {
        "brevo": BrevoTrackingWebhookView,
        "mailgun": MailgunTrackingWebhookView,
        "mailjet": MailjetTrackingWebhookView,
        "postmark": PostmarkTrackingWebhookView,
        "sparkpost": SparkPostTrackingWebhookView,
    }.items()
}
# Providers that sign their webhooks with a key of their own, needed on top of basic auth.
ESP_SIGNING_SETTINGS = {"mailgun": "MAILGUN_WEBHOOK_SIGNING_KEY"}

MAX_BODY_BYTES = 1_000_000
MAX_EVENTS = 1000
REPLAY_WINDOW_SECONDS = 300
SIGNATURE_HEADER = "X-Herald-Signature"

_HERALD_MESSAGE_ID = re.compile(r"herald\.\d+\.\d+@[A-Za-z0-9.-]+")
_HERALD_TOKEN = re.compile(r"x-herald-delivery[\"']?\s*[:=,]\s*[\"']?([A-Za-z0-9_-]{20,80})", re.IGNORECASE)


# --- ESPs (django-anymail) ---------------------------------------------------------------------


@csrf_exempt
def esp_tracking(request, provider: str):
    """Anymail's tracking view for the provider, once the webhook secrets are configured.

    Without ANYMAIL_WEBHOOK_SECRET anymail would accept anyone's events (with a warning); Herald
    answers 404 instead, so an unconfigured installation cannot be fed forged bounces.
    """
    view = ESP_VIEWS.get(provider)
    anymail = getattr(settings, "ANYMAIL", {}) or {}
    if view is None or not anymail.get("WEBHOOK_SECRET"):
        raise Http404("This webhook is not configured.")
    signing_setting = ESP_SIGNING_SETTINGS.get(provider)
    if signing_setting and not anymail.get(signing_setting):
        raise Http404("This webhook is not configured.")
    try:
        return view.as_view()(request)
    except _UnreadableEvent as error:
        logger.info("unreadable ESP webhook", extra={"provider": provider, "error": str(error)[:200]})
        return JsonResponse({"error": f"This is not a {provider} tracking event."}, status=400)


_ESP_KINDS = {"bounced": ("bounce", True), "rejected": ("bounce", True), "deferred": ("bounce", False)}


@receiver(anymail_tracking, dispatch_uid="herald.campaigns.bounces")
def _esp_event(sender, event, esp_name: str, **kwargs) -> None:
    """A normalized anymail event: bounces, rejections and complaints become Herald reports."""
    if event.event_type == "complained":
        kind, hard = "complaint", False
    elif event.event_type in _ESP_KINDS:
        kind, hard = _ESP_KINDS[event.event_type]
    else:
        return  # sent, delivered, opened, clicked...: the analytics app's business
    raw = json.dumps(event.esp_event, default=str) if event.esp_event is not None else ""
    token = _HERALD_TOKEN.search(raw)
    message_id = _HERALD_MESSAGE_ID.search(f"{event.message_id or ''} {raw}")
    report = BounceReport(
        kind=kind,
        recipient=(event.recipient or "").lower(),
        hard=hard,
        diagnostic=" ".join(str(part) for part in (event.mta_response, event.description) if part)[:1000]
        or str(event.reject_reason or event.event_type),
        delivery_token=token.group(1) if token else None,
        original_message_id=message_id.group(0) if message_id else None,
        feedback_type="abuse" if kind == "complaint" else "",
    )
    bounce_intake(report=report, source=esp_name)


# --- Herald's signed JSON webhook --------------------------------------------------------------


class _BadRequest(Exception):
    pass


@csrf_exempt
@require_POST
def workspace_bounces(request, workspace_id: int):
    """A workspace's bounce and complaint events, signed with its webhook secret.

    The body is JSON: {"timestamp": <unix seconds>, "events": [{"id": "...", "type": "bounce" or
    "complaint", "hard": true, "delivery_token" or "message_id" or "email": "...", "detail": "..."}]}.
    `X-Herald-Signature: sha256=<hex>` is the HMAC-SHA256 of the raw body under the secret. The
    timestamp must be within five minutes (a captured request cannot be replayed later), and an
    event id already seen, or a delivery already recorded, counts once.
    """
    workspace = Workspace.objects.filter(pk=workspace_id, is_active=True).first()
    if workspace is None:
        raise Http404("No such workspace.")
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return JsonResponse({"error": "The body is larger than 1 MB."}, status=413)
    if not _signature_ok(body, request.headers.get(SIGNATURE_HEADER, ""), workspace_webhook_secret(workspace.pk)):
        return JsonResponse({"error": f"Missing or wrong {SIGNATURE_HEADER}."}, status=403)
    try:
        events = _parse_events(body)
    except _BadRequest as problem:
        return JsonResponse({"error": str(problem)}, status=400)
    totals = {"received": len(events), "recorded": 0, "duplicates": 0, "unmatched": 0}
    for event_id, report in events:
        if event_id and webhook_event_seen(workspace_id=workspace.pk, event_id=event_id):
            totals["duplicates"] += 1
            continue
        result = bounce_intake(report=report, workspace_id=workspace.pk, source="webhook")
        if event_id:
            webhook_event_mark(workspace_id=workspace.pk, event_id=event_id)
        if not result.matched:
            totals["unmatched"] += 1
        elif result.changed:
            totals["recorded"] += 1
        else:
            totals["duplicates"] += 1
    return JsonResponse(totals)


def signature_for(body: bytes, secret: str) -> str:
    """The X-Herald-Signature value for a body (what a sender computes)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _signature_ok(body: bytes, header: str, secret: str) -> bool:
    given = header.strip()
    if not given.startswith("sha256="):
        given = "sha256=" + given
    return hmac.compare_digest(given.lower(), signature_for(body, secret))


def _parse_events(body: bytes) -> list[tuple[str, BounceReport]]:
    """Every event, validated before any is recorded, so bad input changes nothing."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("The body is not JSON.") from None
    if not isinstance(payload, dict):
        raise _BadRequest("The body must be a JSON object.")
    timestamp = payload.get("timestamp")
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        raise _BadRequest("timestamp (unix seconds) is required.")
    if abs(time.time() - timestamp) > REPLAY_WINDOW_SECONDS:
        raise _BadRequest("timestamp is more than five minutes away from now; refusing a replay.")
    raw_events = payload.get("events")
    if raw_events is None:
        raw_events = [{key: value for key, value in payload.items() if key != "timestamp"}]
    if not isinstance(raw_events, list) or not raw_events or len(raw_events) > MAX_EVENTS:
        raise _BadRequest(f"events must be a list of 1 to {MAX_EVENTS} objects.")
    events = []
    for index, raw in enumerate(raw_events):
        where = f"events[{index}]"
        if not isinstance(raw, dict):
            raise _BadRequest(f"{where} must be an object.")
        kind = raw.get("type")
        if kind not in ("bounce", "complaint"):
            raise _BadRequest(f'{where}.type must be "bounce" or "complaint".')
        hard = raw.get("hard", True)
        if not isinstance(hard, bool):
            raise _BadRequest(f"{where}.hard must be true or false.")
        strings = {}
        for key in ("id", "delivery_token", "message_id", "email", "detail"):
            value = raw.get(key, "")
            if value is None:
                value = ""
            if not isinstance(value, str) or len(value) > 1000:
                raise _BadRequest(f"{where}.{key} must be a string of at most 1000 characters.")
            strings[key] = value.strip()
        if not (strings["delivery_token"] or strings["message_id"] or strings["email"]):
            raise _BadRequest(f"{where} needs a delivery_token, a message_id or an email.")
        if strings["email"] and "@" not in strings["email"]:
            raise _BadRequest(f"{where}.email is not an email address.")
        report = BounceReport(
            kind=kind,
            recipient=strings["email"].lower(),
            hard=hard if kind == "bounce" else False,
            diagnostic=strings["detail"] or ("Complaint" if kind == "complaint" else "Bounce"),
            delivery_token=strings["delivery_token"] or None,
            original_message_id=strings["message_id"] or None,
        )
        events.append((strings["id"], report))
    return events
