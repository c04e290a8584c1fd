"""The sending pipeline over the delivery ledger: snapshot, claim, send, settle, sweep.

    deliveries_snapshot   one INSERT ... SELECT ... ON CONFLICT DO NOTHING of the audience
    deliveries_claim      a batch, FOR UPDATE SKIP LOCKED, under a lease
    batch_send            render each message (template compiled once per campaign per worker
                          process), hand it to a relay over a pooled connection, then write
                          every outcome with one UPDATE ... FROM (VALUES ...)
    deliveries_sweep      hand expired leases back, finish campaigns with nothing left

Postgres holds the work; the broker only says "there is work for campaign N" (`dispatch`
keeps SEND_TASKS_PER_CAMPAIGN batch tasks in flight). A worker killed mid-batch leaves its rows
leased; the sweeper returns them once the lease runs out, so they are sent again: at most the
batches in flight at the kill can be duplicated, never lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from campaigns.lib import message as message_lib
from campaigns.lib import rendering, tracking
from campaigns.models import Campaign, CampaignLink, Delivery, SendingDomain
from campaigns.relays import BOUNCED, DEFERRED, FAILED, SENT, UNAVAILABLE, RelayPool, relays_for_workspace
from subscribers.models import Subscriber
from subscribers.selectors import subscribers_sendable
from subscribers.tokens import make_unsubscribe_token

logger = logging.getLogger(__name__)

T = TypeVar("T")

FINAL_STATUSES = (
    Delivery.Status.SENT,
    Delivery.Status.FAILED,
    Delivery.Status.BOUNCED,
    Delivery.Status.COMPLAINED,
    Delivery.Status.CANCELLED,
)
PENDING_STATUSES = (Delivery.Status.QUEUED, Delivery.Status.DEFERRED, Delivery.Status.SENDING)
# How often a running batch looks at its campaign's status, so pause and cancel act within seconds.
STATUS_CHECK_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 6 * 3600

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


# --- Snapshot ----------------------------------------------------------------------------


def deliveries_snapshot(*, campaign: Campaign) -> int:
    """Write the campaign's audience into the ledger in one statement; returns rows added.

    Re-running it adds nobody twice (ON CONFLICT on (campaign, subscriber)), so a start cut
    off by a failover can simply run again.
    """
    audience = subscribers_sendable(
        workspace_id=campaign.workspace_id,
        list_ids=list(campaign.lists.values_list("pk", flat=True)),
        segment=campaign.segment,
        exclude_list_ids=list(campaign.exclude_lists.values_list("pk", flat=True)),
    )
    select_sql, select_params = audience.order_by().values("pk", "email").query.sql_with_params()
    sql = f"""
        INSERT INTO campaigns_delivery
            (workspace_id, campaign_id, subscriber_id, email, status, attempts,
             leased_by, smtp_response, message_id, created_at, updated_at)
        SELECT %s, %s, audience.id, audience.email, 'queued', 0, '', '', '', now(), now()
        FROM ({select_sql}) AS audience (id, email)
        ON CONFLICT (campaign_id, subscriber_id) DO NOTHING
    """  # noqa: S608 - the inner SQL is compiled by the ORM, every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.workspace_id, campaign.pk, *select_params])
        return cursor.rowcount


def campaign_links_store(*, campaign: Campaign) -> list[str]:
    """The campaign's literal links, by position, so a click can only lead where it said."""
    compiled = rendering.compile_campaign(
        subject=campaign.subject, preheader=campaign.preheader, html=campaign.html, text=campaign.text
    )
    CampaignLink.objects.bulk_create(
        [CampaignLink(campaign=campaign, position=position, url=url) for position, url in enumerate(compiled.links)],
        ignore_conflicts=True,
    )
    return compiled.links


# --- Claim -------------------------------------------------------------------------------


@dataclass
class Claimed:
    id: int
    subscriber_id: int | None
    email: str
    attempts: int
    name: str = ""
    attributes: dict | None = None


def deliveries_claim(*, campaign_id: int, limit: int, lease_token: str) -> list[Claimed]:
    """Lease up to `limit` ready rows of a sending campaign to this batch; others skip them."""
    lease_until = timezone.now() + timedelta(seconds=settings.SEND_LEASE_SECONDS)
    sql = """
        WITH picked AS (
            SELECT d.id FROM campaigns_delivery d
            WHERE d.campaign_id = %s
              AND d.status IN ('queued', 'deferred')
              AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now())
              AND EXISTS (SELECT 1 FROM campaigns_campaign c WHERE c.id = d.campaign_id AND c.status = 'sending')
            ORDER BY d.id
            LIMIT %s
            FOR UPDATE OF d SKIP LOCKED
        )
        UPDATE campaigns_delivery d
        SET status = 'sending', lease_until = %s, leased_by = %s, updated_at = now()
        FROM picked WHERE d.id = picked.id
        RETURNING d.id, d.subscriber_id, d.email, d.attempts
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id, limit, lease_until, lease_token])
        rows = [Claimed(*row) for row in cursor.fetchall()]
    rows.sort(key=lambda row: row.id)
    people = {
        pk: (name, attributes)
        for pk, name, attributes in Subscriber.objects.filter(
            pk__in=[row.subscriber_id for row in rows if row.subscriber_id]
        ).values_list("pk", "name", "attributes")
    }
    for row in rows:
        row.name, row.attributes = people.get(row.subscriber_id, ("", {}))
    return rows


# --- Outcomes ----------------------------------------------------------------------------


@dataclass
class Outcome:
    delivery_id: int
    status: str
    smtp_code: int | None = None
    smtp_response: str = ""
    relay_id: int | None = None
    message_id: str = ""
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    attempted: bool = True  # whether this counts as an attempt (a release does not)


def deliveries_settle(*, campaign_id: int, lease_token: str, outcomes: list[Outcome]) -> Counter:
    """Write a batch's outcomes in one UPDATE and move the campaign's counters with them.

    A row is written only while it is still this batch's or back in the pool (the sweeper
    returned it after a lease ran out): then the message we sent counts, and it is not sent
    again. A row another batch holds now is left to that batch.
    """
    if not outcomes:
        return Counter()
    values_sql = ", ".join(
        [
            "(%s::bigint, %s::varchar, %s::smallint, %s::varchar, %s::bigint, %s::varchar, %s::timestamptz, "
            "%s::timestamptz, %s::int)"
        ]
        * len(outcomes)
    )
    params: list = []
    for o in outcomes:
        params += [
            o.delivery_id,
            o.status,
            o.smtp_code,
            o.smtp_response[:1000],
            o.relay_id,
            o.message_id,
            o.sent_at,
            o.next_attempt_at,
            1 if o.attempted else 0,
        ]
    sql = f"""
        UPDATE campaigns_delivery d
        SET status = v.status,
            smtp_code = COALESCE(v.code, d.smtp_code),
            smtp_response = CASE WHEN v.response = '' THEN d.smtp_response ELSE v.response END,
            relay_id = COALESCE(v.relay_id, d.relay_id),
            message_id = CASE WHEN v.message_id = '' THEN d.message_id ELSE v.message_id END,
            sent_at = COALESCE(v.sent_at, d.sent_at),
            next_attempt_at = v.next_attempt_at,
            attempts = d.attempts + v.attempted,
            lease_until = NULL,
            leased_by = '',
            updated_at = now()
        FROM (VALUES {values_sql})
            AS v (id, status, code, response, relay_id, message_id, sent_at, next_attempt_at, attempted)
        WHERE d.id = v.id AND d.campaign_id = %s
          AND (d.leased_by = %s OR d.status IN ('queued', 'deferred'))
        RETURNING d.status
    """  # noqa: S608 - placeholders only
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [*params, campaign_id, lease_token])
        counts = Counter(status for (status,) in cursor.fetchall())
        if counts[SENT] or counts[FAILED] or counts[BOUNCED]:
            cursor.execute(
                """UPDATE campaigns_campaign
                   SET sent_count = sent_count + %s, failed_count = failed_count + %s,
                       bounced_count = bounced_count + %s, updated_at = now()
                   WHERE id = %s""",
                [counts[SENT], counts[FAILED], counts[BOUNCED], campaign_id],
            )
    return counts


def retrying_database(operation: Callable[[], T], *, deadline: float) -> T:
    """Run `operation`, retrying across a lost database connection (a failover) until `deadline`.

    Used for writing outcomes: the messages already left, so waiting for the new primary is
    better than letting the lease run out and sending them again.
    """
    pause = 0.25
    while True:
        try:
            return operation()
        except (OperationalError, InterfaceError):
            if time.monotonic() + pause > deadline:
                raise
            logger.warning("database unavailable while writing outcomes; retrying")
            connection.close()
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter for the n-th temporary failure (n >= 1)."""
    base = settings.SEND_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    return min(base, MAX_BACKOFF_SECONDS) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not security


def temporary_failure(*, attempts: int, response: str) -> tuple[str, str, float | None]:
    """(status, response, seconds until the next attempt) after the n-th temporary failure.

    Deferred with backoff until SEND_MAX_ATTEMPTS, then failed with the last answer; campaign
    deliveries and transactional messages give up alike.
    """
    if attempts >= settings.SEND_MAX_ATTEMPTS:
        return FAILED, f"Gave up after {attempts} attempts; last answer: {response}", None
    return DEFERRED, response, backoff_seconds(attempts)


# --- Sending a batch -------------------------------------------------------------------


@dataclass
class CampaignPlan:
    """What a worker needs to send one campaign's messages, built once per campaign per process."""

    campaign_id: int
    workspace_id: int
    name: str
    compiled: rendering.CompiledCampaign
    from_email: str
    from_name: str
    reply_to: str
    domain: str
    track_opens: bool
    track_clicks: bool
    rate_limit_per_second: int | None
    dkim: object | None


class _PlanCache:
    """Compiled campaigns by id; a campaign's content cannot change once it leaves draft."""

    def __init__(self, size: int = 32):
        self.size = size
        self.plans: OrderedDict[int, CampaignPlan] = OrderedDict()
        self.compilations = 0

    def get(self, campaign_id: int) -> CampaignPlan:
        plan = self.plans.get(campaign_id)
        if plan is not None:
            self.plans.move_to_end(campaign_id)
            return plan
        campaign = Campaign.objects.select_related("sender").get(pk=campaign_id)
        plan = _build_plan(campaign)
        self.compilations += 1
        self.plans[campaign_id] = plan
        while len(self.plans) > self.size:
            self.plans.popitem(last=False)
        return plan


def _build_plan(campaign: Campaign) -> CampaignPlan:
    sender = campaign.sender
    domain = sender.domain
    dkim = None
    signing_domain = SendingDomain.objects.filter(
        workspace_id=campaign.workspace_id, domain=domain, verified_at__isnull=False
    ).first()
    if signing_domain and signing_domain.dkim_private_key:
        dkim = message_lib.DkimSigner(
            domain=domain, selector=signing_domain.dkim_selector, private_key_pem=signing_domain.dkim_private_key
        )
    return CampaignPlan(
        campaign_id=campaign.pk,
        workspace_id=campaign.workspace_id,
        name=campaign.name,
        compiled=rendering.compile_campaign(
            subject=campaign.subject, preheader=campaign.preheader, html=campaign.html, text=campaign.text
        ),
        from_email=sender.email,
        from_name=sender.name,
        reply_to=campaign.reply_to,
        domain=domain,
        track_opens=campaign.track_opens,
        track_clicks=campaign.track_clicks,
        rate_limit_per_second=campaign.rate_limit_per_second,
        dkim=dkim,
    )


# Per worker process: compiled campaigns and SMTP connections live across batches.
PLANS = _PlanCache()
POOL = RelayPool()


def _unsubscribe_page(unsubscribe_token: str) -> str:
    # subscribers.tokens.unsubscribe_url, without reverse() on the hot path and for a token in hand.
    return f"{settings.SITE_URL}/u/{unsubscribe_token}/"


def unsubscribe_mailto(*, domain: str, unsubscribe_token: str) -> str:
    """The mailto List-Unsubscribe address; the subject carries the token the mailbox reader checks."""
    mailbox_domain = settings.LIST_UNSUBSCRIBE_MAILTO_DOMAIN or domain
    subject = f"unsubscribe%20{unsubscribe_token}" if unsubscribe_token else "unsubscribe"
    return f"mailto:unsubscribe@{mailbox_domain}?subject={subject}"


def render_for_delivery(
    *, plan: CampaignPlan, delivery: Claimed, open_pixel: bool = True
) -> tuple[str, str, rendering.RenderedMessage]:
    """(delivery token, unsubscribe token, rendered message) of one recipient, personalised and tracked."""
    site = settings.SITE_URL
    token = tracking.make_delivery_token(
        workspace_id=plan.workspace_id, campaign_id=plan.campaign_id, delivery_id=delivery.id
    )
    unsubscribe_token = ""
    if delivery.subscriber_id:
        unsubscribe_token = make_unsubscribe_token(
            workspace_id=plan.workspace_id, subscriber_id=delivery.subscriber_id, campaign_id=plan.campaign_id
        )
    unsubscribe_link = _unsubscribe_page(unsubscribe_token) if unsubscribe_token else ""
    context = {
        "subscriber": rendering.subscriber_context(
            email=delivery.email, name=delivery.name, attributes=delivery.attributes or {}
        ),
        "campaign": {"name": plan.name},
        "unsubscribe_url": unsubscribe_link,
        "preferences_url": f"{unsubscribe_link}preferences/" if unsubscribe_link else "",
        "view_in_browser_url": f"{site}/t/v/{token}",
    }
    click = (
        (lambda position: tracking.click_url(site_url=site, token=token, position=position))
        if plan.track_clicks
        else None
    )
    pixel = tracking.open_pixel_url(site_url=site, token=token) if plan.track_opens and open_pixel else None
    return token, unsubscribe_token, plan.compiled.render(context=context, click_url=click, open_pixel_url=pixel)


def build_campaign_message(*, plan: CampaignPlan, delivery: Claimed) -> tuple[str, bytes]:
    """(Message-ID, bytes) of one recipient's message: personalised, tracked, with every header."""
    token, unsubscribe_token, rendered = render_for_delivery(plan=plan, delivery=delivery)
    message_id = message_lib.make_message_id(delivery_id=delivery.id, campaign_id=plan.campaign_id, domain=plan.domain)
    payload = message_lib.build_message(
        from_email=plan.from_email,
        from_name=plan.from_name,
        to_email=delivery.email,
        to_name=delivery.name,
        reply_to=plan.reply_to,
        rendered=rendered,
        message_id=message_id,
        list_unsubscribe_url=_unsubscribe_page(unsubscribe_token) if unsubscribe_token else "",
        list_unsubscribe_mailto=unsubscribe_mailto(domain=plan.domain, unsubscribe_token=unsubscribe_token),
        delivery_token=token,
        dkim=plan.dkim,
    )
    return message_id, payload


def delivery_web_copy(*, token: str) -> rendering.RenderedMessage | None:
    """The message a delivery token names, rendered again for a browser ("view in browser" links).

    None for a token Herald did not sign or a delivery that no longer exists. Links stay tracked;
    no open pixel, since reading the web copy is not opening the email.
    """
    try:
        ref = tracking.read_delivery_token(token)
    except tracking.InvalidToken:
        return None
    row = (
        Delivery.objects.filter(pk=ref.delivery_id, campaign_id=ref.campaign_id, workspace_id=ref.workspace_id)
        .values("id", "subscriber_id", "email", "attempts")
        .first()
    )
    if row is None:
        return None
    delivery = Claimed(**row)
    if delivery.subscriber_id:
        person = Subscriber.objects.filter(pk=delivery.subscriber_id).values("name", "attributes").first() or {}
        delivery.name, delivery.attributes = person.get("name", ""), person.get("attributes") or {}
    _, _, rendered = render_for_delivery(plan=PLANS.get(ref.campaign_id), delivery=delivery, open_pixel=False)
    return rendered


@dataclass
class BatchResult:
    claimed: int
    counts: Counter
    stopped: str = ""  # why the batch ended early: paused, cancelled, no relay


def batch_send(*, campaign_id: int, limit: int | None = None) -> BatchResult:
    """Claim one batch of the campaign, send it, settle it. Safe to run anywhere, any number of times."""
    lease_token = f"{WORKER_NAME}:{uuid.uuid4().hex[:10]}"
    claimed = deliveries_claim(
        campaign_id=campaign_id, limit=limit or settings.SEND_BATCH_SIZE, lease_token=lease_token
    )
    if not claimed:
        return BatchResult(0, Counter())
    lease_deadline = time.monotonic() + settings.SEND_LEASE_SECONDS - 5
    plan = PLANS.get(campaign_id)
    relays = relays_for_workspace(workspace_id=plan.workspace_id)
    rate_keys = ((f"campaign:{campaign_id}", float(plan.rate_limit_per_second)),) if plan.rate_limit_per_second else ()
    outcomes: list[Outcome] = []
    bounced: list[tuple[str, str]] = []
    stopped = ""
    next_check = time.monotonic() + STATUS_CHECK_SECONDS
    try:
        for delivery in claimed:
            if time.monotonic() >= next_check:
                status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
                if status != Campaign.Status.SENDING:
                    stopped = status or "deleted"
                    break
                next_check = time.monotonic() + STATUS_CHECK_SECONDS
            if time.monotonic() > lease_deadline:
                stopped = "lease"
                break
            try:
                message_id, payload = build_campaign_message(plan=plan, delivery=delivery)
            except Exception as error:
                # One recipient's data must not stop the campaign: record why and go on.
                logger.exception("could not build a message", extra={"delivery_id": delivery.id})
                outcomes.append(Outcome(delivery.id, FAILED, None, f"Could not build the message: {error}"[:1000]))
                continue
            result = POOL.send(
                relays=relays, mail_from=plan.from_email, rcpt=delivery.email, message=payload, rate_keys=rate_keys
            )
            if result.kind == UNAVAILABLE:
                stopped = "no relay"
                break
            outcomes.append(_outcome_for(delivery, result, message_id))
            if result.kind == BOUNCED:
                bounced.append((delivery.email, result.response))
    finally:
        # Whatever was not attempted goes back to the pool (or is cancelled with its campaign).
        release_status = Delivery.Status.CANCELLED if stopped == Campaign.Status.CANCELLED else Delivery.Status.QUEUED
        retry_at = (
            timezone.now() + timedelta(seconds=min(settings.RELAY_CIRCUIT_OPEN_SECONDS, 30))
            if stopped == "no relay"
            else None
        )
        outcomes += [
            Outcome(delivery.id, release_status, next_attempt_at=retry_at, attempted=False)
            for delivery in claimed[len(outcomes) :]
        ]
        counts = retrying_database(
            lambda: deliveries_settle(campaign_id=campaign_id, lease_token=lease_token, outcomes=outcomes),
            deadline=lease_deadline,
        )
    for email, response in bounced:
        address_suppress_bounced(workspace_id=plan.workspace_id, email=email, detail=response)
    return BatchResult(len(claimed), counts, stopped)


def _outcome_for(delivery: Claimed, result, message_id: str) -> Outcome:
    now = timezone.now()
    if result.kind == SENT:
        return Outcome(delivery.id, SENT, result.code, result.response, result.relay_id, message_id, sent_at=now)
    if result.kind == DEFERRED:
        status, response, retry_in = temporary_failure(attempts=delivery.attempts + 1, response=result.response)
        retry_at = now + timedelta(seconds=retry_in) if retry_in is not None else None
        return Outcome(
            delivery.id, status, result.code, response, result.relay_id, message_id, next_attempt_at=retry_at
        )
    status = BOUNCED if result.kind == BOUNCED else FAILED
    return Outcome(delivery.id, status, result.code, result.response, result.relay_id, message_id)


def address_suppress_bounced(*, workspace_id: int, email: str, detail: str) -> None:
    """Suppress an address a relay refused as unknown (best effort: the caller's record stands)."""
    from subscribers.services import subscriber_record_hard_bounce

    try:
        subscriber_record_hard_bounce(workspace_id=workspace_id, email=email, detail=detail)
    except DatabaseError:
        # The ledger already says bounced; the suppression is retried by bounce intake later.
        logger.exception("could not suppress a hard-bounced address")


# --- Sweeper and completion ---------------------------------------------------------------


def deliveries_release_expired() -> int:
    """Hand back rows whose lease ran out (their worker died or hung): they will be sent again."""
    return Delivery.objects.filter(status=Delivery.Status.SENDING, lease_until__lt=timezone.now()).update(
        status=Delivery.Status.QUEUED, lease_until=None, leased_by="", updated_at=timezone.now()
    )


def campaign_finish_if_done(*, campaign_id: int) -> bool:
    """Mark a sending campaign sent once nothing in its ledger is waiting or in flight."""
    if Delivery.objects.filter(campaign_id=campaign_id, status__in=PENDING_STATUSES).exists():
        return False
    now = timezone.now()
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.SENT, finished_at=now, updated_at=now
        )
    )


def campaign_has_ready_work(*, campaign_id: int) -> bool:
    return (
        Delivery.objects.filter(campaign_id=campaign_id, status__in=[Delivery.Status.QUEUED, Delivery.Status.DEFERRED])
        .exclude(next_attempt_at__gt=timezone.now())
        .exists()
    )


def deliveries_cancel_pending(*, campaign_id: int) -> int:
    return Delivery.objects.filter(
        campaign_id=campaign_id, status__in=[Delivery.Status.QUEUED, Delivery.Status.DEFERRED]
    ).update(status=Delivery.Status.CANCELLED, next_attempt_at=None, updated_at=timezone.now())


# --- Dispatcher ---------------------------------------------------------------------------


def _inflight_key(campaign_id: int) -> str:
    return f"herald:send:inflight:{campaign_id}"


def _inflight_stale_seconds() -> float:
    return settings.SEND_LEASE_SECONDS + 30


def dispatch(*, campaign_id: int) -> int:
    """Top the campaign up to SEND_TASKS_PER_CAMPAIGN batch tasks in flight; returns how many were queued.

    Each task carries a slot token kept in a Redis sorted set while it is queued or running;
    a token left by a killed worker goes stale and its slot is refilled.
    """
    from django_redis import get_redis_connection

    from campaigns.tasks import send_batch

    wanted = settings.SEND_TASKS_PER_CAMPAIGN
    key = _inflight_key(campaign_id)
    try:
        client = get_redis_connection("default")
        now = time.time()
        client.zremrangebyscore(key, "-inf", now - _inflight_stale_seconds())
        missing = wanted - client.zcard(key)
        tokens = [uuid.uuid4().hex for _ in range(max(missing, 0))]
        if tokens:
            client.zadd(key, dict.fromkeys(tokens, now))
            client.expire(key, int(_inflight_stale_seconds() * 4))
    except Exception:
        # Without Redis the broker is likely away too; queue one task so work resumes when it is back.
        logger.warning("dispatch could not count tasks in flight", exc_info=True)
        tokens = [uuid.uuid4().hex]
    for token in tokens:
        send_batch.apply_async(args=[campaign_id, token], queue="send")
    return len(tokens)


def slot_heartbeat(*, campaign_id: int, token: str) -> None:
    from django_redis import get_redis_connection

    # Without Redis the slot goes stale and is refilled; sending goes on.
    with contextlib.suppress(Exception):
        get_redis_connection("default").zadd(_inflight_key(campaign_id), {token: time.time()})


def slot_pass_on(*, campaign_id: int, token: str) -> str | None:
    """Hand this task's slot to a successor; None when the campaign has enough tasks already."""
    from django_redis import get_redis_connection

    try:
        client = get_redis_connection("default")
        client.zrem(_inflight_key(campaign_id), token)
        if client.zcard(_inflight_key(campaign_id)) >= settings.SEND_TASKS_PER_CAMPAIGN:
            return None
        successor = uuid.uuid4().hex
        client.zadd(_inflight_key(campaign_id), {successor: time.time()})
        return successor
    except Exception:
        return uuid.uuid4().hex


def slot_release(*, campaign_id: int, token: str) -> None:
    from django_redis import get_redis_connection

    # A token left behind goes stale by itself.
    with contextlib.suppress(Exception):
        get_redis_connection("default").zrem(_inflight_key(campaign_id), token)
