"""The inbound mailbox: bounce reports, spam complaints and mailto unsubscribe requests.

Mail that comes back to Herald lands in one mailbox directory (BOUNCE_MAILBOX_DIR, in the local
SMTP sink's layout): delivery status notifications and ARF complaints sent to the bounce address,
and the messages mail clients send to a campaign's `mailto:unsubscribe@...` List-Unsubscribe
address. `mailbox_process` reads it: reports go to `bounces.bounce_intake`, unsubscribe requests
to `unsubscribe_mail_intake`, anything else is set aside as ignored.

An unsubscribe request names its subscriber by the signed unsubscribe token the mailto subject
carries. A request without a valid token (someone who typed the address by hand) is matched
the way RFC 2369 intends: the sender's address, in the workspaces that send from the domain it
was sent to. Either way the unsubscribe goes through `unsubscribe_request`, which queues it
when the database is away, so it is never lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from campaigns.bounces import bounce_intake
from campaigns.lib.dsn import parse_bounce
from campaigns.lib.unsubscribe_mail import UnsubscribeMail, parse_unsubscribe_mail
from campaigns.models import Sender, SendingDomain
from common.smtp_sink import Store
from subscribers.models import Subscriber
from subscribers.services import unsubscribe_request
from subscribers.tokens import InvalidToken, read_unsubscribe_token

logger = logging.getLogger(__name__)

MAILBOX_PROCESSING = "processing"
MAILBOX_DONE = "processed"
MAILBOX_IGNORED = "ignored"
# A message left in processing/ this long ago belongs to a reader that died: read it again.
MAILBOX_STALE_SECONDS = 600
UNSUBSCRIBE_METHOD = "email to the List-Unsubscribe address"


@dataclass
class MailboxResult:
    read: int = 0
    recorded: int = 0  # reports that changed a delivery or subscriber
    duplicates: int = 0  # reports already recorded
    unmatched: int = 0  # reports and unsubscribe requests about no one Herald knows
    unsubscribed: int = 0  # unsubscribe requests applied (or queued while the database is away)
    ignored: int = 0  # messages that were neither (auto-replies, spam)


def mailbox_process(*, directory: str, limit: int = 500) -> MailboxResult:
    """Read the messages waiting in a mailbox directory (common/smtp_sink.py's layout).

    Each message is claimed by an atomic rename into processing/, so readers running at once
    never take the same one; it then moves to processed/ (or ignored/, when it is neither a
    report nor an unsubscribe request). A reader that dies leaves it in processing/, and a later
    run takes it up again, which is safe because recording and unsubscribing are idempotent.
    """
    store = Store(directory)
    processing, done, ignored = (Path(directory) / name for name in (MAILBOX_PROCESSING, MAILBOX_DONE, MAILBOX_IGNORED))
    for folder in (processing, done, ignored):
        folder.mkdir(parents=True, exist_ok=True)
    result = MailboxResult()
    stale_before = timezone.now().timestamp() - MAILBOX_STALE_SECONDS
    candidates = [store.messages_dir / name for name in store.names()]
    candidates += [path for path in sorted(processing.glob("*.eml")) if path.stat().st_mtime < stale_before]
    for path in candidates[:limit]:
        claimed = processing / path.name
        if path != claimed:
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another reader took it
        claimed.touch()
        result.read += 1
        if _take_in(claimed.read_bytes(), result, name=claimed.name):
            claimed.rename(done / claimed.name)
        else:
            result.ignored += 1
            claimed.rename(ignored / claimed.name)
    return result


def _take_in(raw: bytes, result: MailboxResult, *, name: str) -> bool:
    """Record one message; False when it is neither a report nor an unsubscribe request."""
    try:
        report = parse_bounce(raw)
        request = None if report is not None else parse_unsubscribe_mail(raw)
    except Exception:
        logger.exception("unreadable message in the mailbox", extra={"file": name})
        return False
    if report is not None:
        outcome = bounce_intake(report=report, source="bounce mailbox")
        if not outcome.matched:
            result.unmatched += 1
        elif outcome.changed:
            result.recorded += 1
        else:
            result.duplicates += 1
        return True
    if request is not None:
        if unsubscribe_mail_intake(request=request):
            result.unsubscribed += 1
        else:
            result.unmatched += 1
        return True
    return False


# --- Unsubscribe requests by email -----------------------------------------------------------


def unsubscribe_mail_intake(*, request: UnsubscribeMail) -> int:
    """Unsubscribe whoever an emailed request names; how many subscribers it named."""
    for token in request.tokens:
        try:
            named = read_unsubscribe_token(token)
        except InvalidToken:
            continue
        unsubscribe_request(
            workspace_id=named.workspace_id,
            subscriber_id=named.subscriber_id,
            campaign_id=named.campaign_id,
            method=UNSUBSCRIBE_METHOD,
        )
        return 1
    subscribers = _subscribers_by_sender(request)
    for workspace_id, subscriber_id in subscribers:
        unsubscribe_request(workspace_id=workspace_id, subscriber_id=subscriber_id, method=UNSUBSCRIBE_METHOD)
    if not subscribers:
        logger.info("an unsubscribe email named no subscriber", extra={"recipient": request.recipient})
    return len(subscribers)


def _subscribers_by_sender(request: UnsubscribeMail) -> list[tuple[int, int]]:
    """(workspace, subscriber) of the sender's address in the workspaces sending from the domain.

    Not when every workspace shares one unsubscribe domain: that names no workspace.
    """
    domain = request.recipient_domain
    if not request.sender or not domain or settings.LIST_UNSUBSCRIBE_MAILTO_DOMAIN:
        return []
    workspaces = set(
        Sender.objects.filter(email__endswith=f"@{domain}", verified_at__isnull=False).values_list(
            "workspace_id", flat=True
        )
    )
    workspaces |= set(SendingDomain.objects.filter(domain=domain).values_list("workspace_id", flat=True))
    if not workspaces:
        return []
    return list(
        Subscriber.objects.filter(workspace_id__in=workspaces, email=request.sender).values_list("workspace_id", "pk")
    )
