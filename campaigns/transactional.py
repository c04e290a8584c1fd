"""Transactional messages: one message to one address from a template, sent now, retried until final.

`transactional_send` renders the message, keeps its bytes on the `TransactionalMessage` row and
hands it to the workspace's relays at once. When no relay takes it (a 4xx, or every relay down
or its circuit open) the row is deferred with a next attempt time; the beat task
`campaigns.transactional_retry` sends the very same bytes (same Message-ID) again with the
campaigns' backoff, until a relay accepts or refuses it or SEND_MAX_ATTEMPTS is reached.

A retry claims its rows by moving their next attempt past a lease before sending, so two
workers never send one row at once, and a worker that dies mid-send only delays the rows it held:
at most the one message it was sending can reach the recipient twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.lib import message as message_lib
from campaigns.lib import rendering, tracking
from campaigns.models import TransactionalMessage
from campaigns.relays import BOUNCED, DEFERRED, FAILED, SENT, UNAVAILABLE, RelayPool, SendResult, relays_for_workspace
from campaigns.sending import address_suppress_bounced, temporary_failure
from subscribers.models import Subscriber
from subscribers.tokens import unsubscribe_url as unsubscribe_link

logger = logging.getLogger(__name__)

RETRY_BATCH_SIZE = 20
# A claimed row is someone's for this long; a retry that dies hands it back when it runs out.
RETRY_LEASE_SECONDS = 300


def transactional_send(
    *,
    workspace_id: int,
    template,
    sender,
    to_email: str,
    to_name: str = "",
    attributes: dict | None = None,
    reply_to: str = "",
) -> TransactionalMessage:
    """Render a template for one address and hand it to the workspace's relays now.

    The caller's transaction holds the record (and the API's idempotency record), so a retried
    request with the same Idempotency-Key gets this answer instead of a second message.
    """
    compiled = rendering.compile_campaign(
        subject=template.subject, preheader=template.preheader, html=template.html, text=template.text
    )
    record = TransactionalMessage.objects.create(
        workspace_id=workspace_id,
        template=template,
        sender=sender,
        to_email=to_email,
        mail_from=sender.email,
        status=TransactionalMessage.Status.FAILED,
    )
    site = settings.SITE_URL
    token = tracking.make_delivery_token(workspace_id=workspace_id, campaign_id=0, delivery_id=record.pk)
    subscriber_id = (
        Subscriber.objects.filter(workspace_id=workspace_id, email=to_email).values_list("pk", flat=True).first()
    )
    unsubscribe_url = ""
    if subscriber_id:
        unsubscribe_url = unsubscribe_link(workspace_id=workspace_id, subscriber_id=subscriber_id)
    rendered = compiled.render(
        context={
            "subscriber": rendering.subscriber_context(email=to_email, name=to_name, attributes=attributes or {}),
            "campaign": {"name": template.name},
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": f"{unsubscribe_url}preferences/" if unsubscribe_url else "",
            "view_in_browser_url": "",
        }
    )
    record.message_id = f"<t{record.pk}.{uuid.uuid4().hex[:12]}@{sender.domain}>"
    payload = message_lib.build_message(
        from_email=sender.email,
        from_name=sender.name,
        to_email=to_email,
        to_name=to_name,
        reply_to=reply_to,
        rendered=rendered,
        message_id=record.message_id,
        list_unsubscribe_url=unsubscribe_url or site + "/",
        list_unsubscribe_mailto=None,
        delivery_token=token,
    )
    if not unsubscribe_url:
        # Not a subscriber: there is no list to leave, so the message carries no List-Unsubscribe.
        payload = _without_list_unsubscribe(payload)
    pool = RelayPool()
    try:
        result = pool.send(
            relays=relays_for_workspace(workspace_id=workspace_id),
            mail_from=sender.email,
            rcpt=to_email,
            message=payload,
        )
    finally:
        pool.close()
    outcome = _outcome_for(attempts=1, result=result)
    _settle(record, outcome, payload=payload, also=("message_id",))
    if outcome.status == TransactionalMessage.Status.BOUNCED:
        transaction.on_commit(
            lambda: address_suppress_bounced(workspace_id=workspace_id, email=to_email, detail=result.response)
        )
    return record


# --- Outcomes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str
    attempts: int
    code: int | None
    response: str
    relay_id: int | None
    retry_in_seconds: float | None = None


def _outcome_for(*, attempts: int, result: SendResult) -> Outcome:
    """What one attempt's answer means for the message: final, or deferred with the next delay."""
    if result.kind in (DEFERRED, UNAVAILABLE):
        status, response, retry_in = temporary_failure(attempts=attempts, response=result.response)
        return Outcome(status, attempts, result.code, response, result.relay_id, retry_in)
    status = {SENT: SENT, BOUNCED: BOUNCED}.get(result.kind, FAILED)
    return Outcome(status, attempts, result.code, result.response, result.relay_id)


_OUTCOME_FIELDS = ("status", "attempts", "next_attempt_at", "smtp_code", "smtp_response", "relay", "sent_at", "payload")


def _settle(record: TransactionalMessage, outcome: Outcome, *, payload: bytes, also: tuple[str, ...] = ()) -> None:
    """Write an attempt's outcome; the bytes are kept only while another attempt may need them."""
    now = timezone.now()
    record.status = outcome.status
    record.attempts = outcome.attempts
    record.smtp_code, record.smtp_response = outcome.code, outcome.response[:1000]
    record.relay_id = outcome.relay_id
    record.sent_at = now if outcome.status == SENT else None
    deferred = outcome.status == DEFERRED
    record.next_attempt_at = now + timedelta(seconds=outcome.retry_in_seconds) if deferred else None
    record.payload = payload if deferred else b""
    record.save(update_fields=[*_OUTCOME_FIELDS, *also])


# --- Retries -----------------------------------------------------------------------------------


@dataclass
class RetryResult:
    attempted: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0  # refused by a relay, or given up after SEND_MAX_ATTEMPTS
    bounced: int = 0


def transactional_claim_due(*, limit: int = RETRY_BATCH_SIZE) -> list[int]:
    """Ids of deferred messages whose time has come, leased to the caller."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            TransactionalMessage.objects.select_for_update(skip_locked=True)
            .filter(status=TransactionalMessage.Status.DEFERRED, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        TransactionalMessage.objects.filter(pk__in=ids).update(
            next_attempt_at=now + timedelta(seconds=RETRY_LEASE_SECONDS)
        )
    return ids


def transactional_retry_due(*, limit: int = 1000) -> RetryResult:
    """Beat: send every deferred message that is due once more; how each attempt ended."""
    result = RetryResult()
    pool = RelayPool()
    relays_of: dict[int, list] = {}
    try:
        while result.attempted < limit:
            ids = transactional_claim_due(limit=min(RETRY_BATCH_SIZE, limit - result.attempted))
            if not ids:
                break
            for record in TransactionalMessage.objects.filter(pk__in=ids).order_by("pk"):
                if record.workspace_id not in relays_of:
                    relays_of[record.workspace_id] = relays_for_workspace(workspace_id=record.workspace_id)
                status = _retry_one(record, pool=pool, relays=relays_of[record.workspace_id])
                result.attempted += 1
                setattr(result, status, getattr(result, status) + 1)
    finally:
        pool.close()
    return result


def _retry_one(record: TransactionalMessage, *, pool: RelayPool, relays: list) -> str:
    payload = bytes(record.payload)
    if not payload or not record.mail_from:
        outcome = Outcome(FAILED, record.attempts, None, "Nothing to retry: the message was not kept.", None)
    else:
        answer = pool.send(relays=relays, mail_from=record.mail_from, rcpt=record.to_email, message=payload)
        outcome = _outcome_for(attempts=record.attempts + 1, result=answer)
    _settle(record, outcome, payload=payload)
    if outcome.status == BOUNCED:
        address_suppress_bounced(workspace_id=record.workspace_id, email=record.to_email, detail=outcome.response)
    logger.info(
        "transactional message retried",
        extra={"message_id": record.pk, "status": outcome.status, "attempts": outcome.attempts},
    )
    return outcome.status


def _without_list_unsubscribe(message: bytes) -> bytes:
    head, _, body = message.partition(b"\r\n\r\n")
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line.lower().startswith(b"list-unsubscribe")
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept) + b"\r\n\r\n" + body
