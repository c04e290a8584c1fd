"""Bounce and complaint intake: one set of services behind every way a report arrives.

DSN and ARF messages in the inbound mailbox (campaigns/mailbox.py), ESP webhooks (through anymail) and Herald's own
signed JSON webhook all end in `bounce_intake`, which finds the delivery a report is about and
records it with `delivery_record_bounce` / `delivery_record_complaint`. Those update the ledger
row, the campaign's counters and the subscriber (suppressed), and watch the campaign's rates:
past 5% hard bounces or 0.3% complaints after at least 1,000 deliveries the campaign pauses
itself and the workspace's owners are told why. Every write is conditional, so a report
delivered twice (webhooks are retried, mailboxes re-read) counts once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import Member
from campaigns.lib.dsn import BounceReport
from campaigns.lib.tracking import InvalidToken, read_delivery_token
from campaigns.models import Campaign, Delivery
from campaigns.services import CampaignError, campaign_pause
from subscribers.selectors import is_suppressed
from subscribers.services import subscriber_record_complaint, subscriber_record_hard_bounce

logger = logging.getLogger(__name__)

HARD_BOUNCE_PAUSE_RATE = 0.05
COMPLAINT_PAUSE_RATE = 0.003  # Gmail's published limit
PAUSE_MIN_DELIVERIES = 1000
# A report names a delivery by token or Message-ID; by address alone only within this window.
ADDRESS_MATCH_DAYS = 30

_HERALD_MESSAGE_ID = re.compile(r"herald\.(\d+)\.(\d+)@[A-Za-z0-9.-]+")
# Statuses an asynchronous bounce may follow: accepted by the relay (sent), retrying (deferred),
# or refused outright (failed). Bounced and complained rows are final.
_BOUNCEABLE = (Delivery.Status.SENT, Delivery.Status.DEFERRED, Delivery.Status.FAILED)


@dataclass(frozen=True)
class IntakeResult:
    matched: bool  # a delivery (or, failing that, a subscriber) was found for the report
    changed: bool  # this report changed something; False for a duplicate
    delivery_id: int | None = None


# --- Recording ---------------------------------------------------------------------------------


def delivery_record_bounce(*, delivery_id: int, hard: bool, detail: str) -> bool:
    """Record a bounce of a delivery; True when it changed something (False: already recorded).

    A hard bounce marks the row bounced (moving it from the campaign's sent or failed count to
    bounced) and suppresses the address; a soft one only notes what the remote server said.
    """
    detail = " ".join((detail or "").split())[:1000]
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",)).select_related("campaign").filter(pk=delivery_id).first()
        )
        if delivery is None:
            return False
        if not hard:
            if delivery.status != Delivery.Status.SENT:
                return False
            note = f"Soft bounce: {detail}"[:1000]
            if delivery.smtp_response == note:
                return False
            Delivery.objects.filter(pk=delivery.pk).update(smtp_response=note, updated_at=now)
            return True
        if delivery.status not in _BOUNCEABLE:
            return False
        previous = delivery.status
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.BOUNCED, bounced_at=now, smtp_response=detail or "Hard bounce", updated_at=now
        )
        counters = {"bounced_count": F("bounced_count") + 1, "updated_at": now}
        if previous == Delivery.Status.SENT:
            counters["sent_count"] = F("sent_count") - 1
        elif previous == Delivery.Status.FAILED:
            counters["failed_count"] = F("failed_count") - 1
        Campaign.objects.filter(pk=delivery.campaign_id).update(**counters)
        if delivery.email:
            subscriber_record_hard_bounce(workspace_id=delivery.workspace_id, email=delivery.email, detail=detail)
        campaign_check_rates(campaign_id=delivery.campaign_id)
    return True


def delivery_record_complaint(*, delivery_id: int, detail: str) -> bool:
    """Record a spam complaint about a delivery; True when it changed something.

    The message was delivered, so the campaign's sent count stays; its complaint count grows and
    the address is suppressed.
    """
    detail = " ".join((detail or "").split())[:1000]
    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update(of=("self",)).filter(pk=delivery_id).first()
        if delivery is None or delivery.status in (Delivery.Status.COMPLAINED, Delivery.Status.CANCELLED):
            return False
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.COMPLAINED, complained_at=now, updated_at=now
        )
        counters = {"complained_count": F("complained_count") + 1, "updated_at": now}
        if delivery.status == Delivery.Status.BOUNCED:
            counters["bounced_count"] = F("bounced_count") - 1
            counters["sent_count"] = F("sent_count") + 1
        Campaign.objects.filter(pk=delivery.campaign_id).update(**counters)
        if delivery.email:
            subscriber_record_complaint(workspace_id=delivery.workspace_id, email=delivery.email, detail=detail)
        campaign_check_rates(campaign_id=delivery.campaign_id)
    return True


# --- Rates and the automatic pause -------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRates:
    deliveries: int  # messages that left Herald: accepted by a relay or bounced
    hard_bounces: int
    complaints: int

    @property
    def hard_bounce_rate(self) -> float:
        return self.hard_bounces / self.deliveries if self.deliveries else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.deliveries if self.deliveries else 0.0

    def pause_reason(self) -> str | None:
        """Why the campaign must stop, or None while it is within the limits."""
        if self.deliveries < PAUSE_MIN_DELIVERIES:
            return None
        if self.hard_bounce_rate > HARD_BOUNCE_PAUSE_RATE:
            return (
                f"Paused automatically: {self.hard_bounces:,} of {self.deliveries:,} messages hard-bounced "
                f"({self.hard_bounce_rate:.1%}), above the {HARD_BOUNCE_PAUSE_RATE:.0%} limit."
            )
        if self.complaint_rate > COMPLAINT_PAUSE_RATE:
            return (
                f"Paused automatically: {self.complaints:,} of {self.deliveries:,} recipients reported the "
                f"message as spam ({self.complaint_rate:.2%}), above the {COMPLAINT_PAUSE_RATE:.1%} limit."
            )
        return None


def campaign_rates(*, campaign: Campaign) -> CampaignRates:
    """From the campaign's counters, which move with the ledger rows (no count over the ledger)."""
    return CampaignRates(
        deliveries=campaign.sent_count + campaign.bounced_count,
        hard_bounces=campaign.bounced_count,
        complaints=campaign.complained_count,
    )


def _resumed_marker_key(campaign_id: int) -> str:
    return f"campaigns:autopause:{campaign_id}"


def campaign_check_rates(*, campaign_id: int) -> bool:
    """Pause a sending campaign whose bounce or complaint rate is past its limit; True if paused now.

    After an owner resumes an automatically paused campaign, it is judged again only once another
    PAUSE_MIN_DELIVERIES messages have gone out, so resuming is a real choice, not a loop.
    """
    campaign = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).first()
    if campaign is None:
        return False
    rates = campaign_rates(campaign=campaign)
    reason = rates.pause_reason()
    if reason is None:
        return False
    with contextlib.suppress(Exception):  # the cache is an optimisation; without it we judge every time
        paused_at = cache.get(_resumed_marker_key(campaign_id))
        if paused_at is not None and rates.deliveries < paused_at + PAUSE_MIN_DELIVERIES:
            return False
    try:
        campaign_pause(campaign=campaign, reason=reason)
    except CampaignError:
        return False  # someone else paused, finished or cancelled it meanwhile
    with contextlib.suppress(Exception):
        cache.set(_resumed_marker_key(campaign_id), rates.deliveries, timeout=30 * 24 * 3600)
    logger.warning("campaign paused automatically", extra={"campaign_id": campaign_id, "reason": reason})
    transaction.on_commit(lambda: _notify_owners(campaign_id=campaign_id, reason=reason))
    return True


def campaigns_check_rates() -> int:
    """Beat: judge every sending campaign (bounces the relays answered at send time count too)."""
    paused = 0
    for campaign_id in Campaign.objects.filter(status=Campaign.Status.SENDING).values_list("pk", flat=True):
        with transaction.atomic():
            paused += campaign_check_rates(campaign_id=campaign_id)
    return paused


def _notify_owners(*, campaign_id: int, reason: str) -> None:
    from campaigns.bounce_tasks import notify_campaign_paused

    try:
        notify_campaign_paused.apply_async(args=[campaign_id, reason], queue="default")
    except Exception:
        # No broker: tell them now rather than not at all.
        logger.exception("could not queue the pause notification; sending it inline")
        campaign_paused_notify(campaign_id=campaign_id, reason=reason)


def campaign_paused_notify(*, campaign_id: int, reason: str) -> int:
    """Email the workspace's owners that (and why) the campaign paused itself; returns messages sent."""
    campaign = Campaign.objects.select_related("workspace").filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    owners = list(
        Member.objects.filter(workspace_id=campaign.workspace_id, role=Member.Role.OWNER)
        .select_related("user")
        .values_list("user__email", flat=True)
    )
    owners = [address for address in owners if address]
    if not owners:
        return 0
    link = settings.SITE_URL + _campaign_url(campaign.pk)
    body = (
        f"The campaign \u201c{campaign.name}\u201d in {campaign.workspace.name} has stopped sending.\n\n"
        f"{reason}\n\n"
        "Mailbox providers throttle or block senders whose mail bounces or is reported as spam this often, "
        "which would hurt every later campaign. Check where this audience came from, remove addresses that "
        "never opted in, then resume the campaign or cancel it:\n\n"
        f"{link}\n"
    )
    send_mail(
        subject=f"Campaign paused: {campaign.name}",
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=owners,
    )
    return len(owners)


def _campaign_url(campaign_id: int) -> str:
    for name, args in (("campaigns:detail", [campaign_id]), ("campaigns:list", [])):
        with contextlib.suppress(Exception):
            return reverse(name, args=args)
    return "/campaigns/"


# --- Webhook secrets and event ids ------------------------------------------------------------

WEBHOOK_EVENT_TTL_SECONDS = 24 * 3600


def workspace_webhook_secret(workspace_id: int) -> str:
    """The key a workspace signs its bounce webhook with: derived from SECRET_KEY, never stored."""
    return salted_hmac("herald.campaigns.bounce-webhook", str(workspace_id), algorithm="sha256").hexdigest()


def _event_key(workspace_id: int, event_id: str) -> str:
    return f"campaigns:webhook-event:{workspace_id}:{hashlib.sha256(event_id.encode()).hexdigest()[:32]}"


def webhook_event_seen(*, workspace_id: int, event_id: str) -> bool:
    """Whether this event id was recorded in the last day (the ledger catches the rest)."""
    try:
        return cache.get(_event_key(workspace_id, event_id)) is not None
    except Exception:
        return False  # Redis away: recording stays idempotent through the ledger


def webhook_event_mark(*, workspace_id: int, event_id: str) -> None:
    with contextlib.suppress(Exception):
        cache.set(_event_key(workspace_id, event_id), 1, timeout=WEBHOOK_EVENT_TTL_SECONDS)


# --- Intake: from a report to a delivery -------------------------------------------------------


def delivery_for_report(
    *, token: str | None, message_id: str | None, recipient: str, workspace_id: int | None
) -> Delivery | None:
    """The delivery a report is about: by signed token, else by Herald's Message-ID, else by address.

    `workspace_id`, when the report came through a workspace's own webhook, confines the search
    to that workspace, so one tenant's secret can never touch another tenant's deliveries.
    """
    scope = Delivery.objects.all() if workspace_id is None else Delivery.objects.filter(workspace_id=workspace_id)
    if token:
        with contextlib.suppress(InvalidToken):
            named = read_delivery_token(token)
            found = scope.filter(pk=named.delivery_id, campaign_id=named.campaign_id).first()
            if found is not None:
                return found
    match = _HERALD_MESSAGE_ID.search(message_id or "")
    if match:
        campaign_id, delivery_id = int(match.group(1)), int(match.group(2))
        found = scope.filter(pk=delivery_id, campaign_id=campaign_id).first()
        if found is not None:
            return found
    recipient = (recipient or "").strip().lower()
    if recipient and "@" in recipient:
        since = timezone.now() - timedelta(days=ADDRESS_MATCH_DAYS)
        return (
            scope.filter(email=recipient, sent_at__gte=since)
            .exclude(status__in=[Delivery.Status.QUEUED, Delivery.Status.CANCELLED])
            .order_by("-sent_at", "-id")
            .first()
        )
    return None


def bounce_intake(*, report: BounceReport, workspace_id: int | None = None, source: str = "") -> IntakeResult:
    """Record one bounce or complaint report, wherever it came from."""
    delivery = delivery_for_report(
        token=report.delivery_token,
        message_id=report.original_message_id,
        recipient=report.recipient,
        workspace_id=workspace_id,
    )
    detail = report.diagnostic or report.status
    if source:
        detail = f"{detail} (via {source})"
    if delivery is None:
        # A workspace's own webhook may report an address Herald did not send to (its ESP's
        # suppression list, say): suppress it all the same. Unscoped reports need a delivery.
        if workspace_id is not None and report.recipient and (report.hard or report.is_complaint):
            record = subscriber_record_complaint if report.is_complaint else subscriber_record_hard_bounce
            already = is_suppressed(workspace_id=workspace_id, email=report.recipient)
            changed = record(workspace_id=workspace_id, email=report.recipient, detail=detail)
            return IntakeResult(matched=True, changed=changed or not already)
        logger.info("bounce report matched no delivery", extra={"recipient": report.recipient, "source": source})
        return IntakeResult(matched=False, changed=False)
    if report.is_complaint:
        changed = delivery_record_complaint(delivery_id=delivery.pk, detail=detail)
    else:
        changed = delivery_record_bounce(delivery_id=delivery.pk, hard=report.hard, detail=detail)
    return IntakeResult(matched=True, changed=changed, delivery_id=delivery.pk)
