"""Celery tasks of the sending pipeline: start due campaigns, send batches, sweep, retry transactional mail.

Tasks carry ids only. Each is safe to run twice: the ledger's conditional updates decide what
is done, the broker only says that there may be work.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_shutdown
from django.db import DatabaseError
from django.db.models import Exists, OuterRef

from campaigns import sending, services, transactional
from campaigns.models import Campaign, Delivery

logger = logging.getLogger(__name__)


@shared_task(name="campaigns.start", queue="send", acks_late=True, soft_time_limit=300, time_limit=360)
def start_campaign(campaign_id: int) -> None:
    """Snapshot a due scheduled campaign's audience and start sending it."""
    services.campaign_start(campaign_id=campaign_id)


@shared_task(name="campaigns.start_due", queue="send", soft_time_limit=60, time_limit=90)
def start_due() -> int:
    """Beat: start every scheduled campaign whose time has come (a schedule survives restarts)."""
    started = 0
    for campaign_id in services.campaigns_due():
        try:
            started += bool(services.campaign_start(campaign_id=campaign_id))
        except DatabaseError:
            logger.exception("could not start a due campaign", extra={"campaign_id": campaign_id})
    return started


@shared_task(name="campaigns.send_batch", queue="send", acks_late=True, soft_time_limit=600, time_limit=660)
def send_batch(campaign_id: int, slot: str | None = None) -> int:
    """Send one batch of the campaign, then hand the slot on while there is work."""
    if slot:
        sending.slot_heartbeat(campaign_id=campaign_id, token=slot)
    result = None
    try:
        result = sending.batch_send(campaign_id=campaign_id)
    finally:
        if result is not None and result.claimed and not result.stopped:
            successor = sending.slot_pass_on(campaign_id=campaign_id, token=slot) if slot else None
            if successor:
                send_batch.apply_async(args=[campaign_id, successor], queue="send")
        elif slot:
            sending.slot_release(campaign_id=campaign_id, token=slot)
    if not result.claimed:
        sending.campaign_finish_if_done(campaign_id=campaign_id)
    return result.claimed


@shared_task(name="campaigns.sweep", queue="send", soft_time_limit=60, time_limit=90)
def sweep() -> dict:
    """Beat: return expired leases, finish campaigns that are done, re-dispatch those with work.

    This is what makes a lost worker or a lost broker message only a delay.
    """
    released = sending.deliveries_release_expired()
    finished = dispatched = 0
    pending = Delivery.objects.filter(campaign=OuterRef("pk"), status__in=sending.PENDING_STATUSES)
    for campaign_id, status in (
        Campaign.objects.filter(status__in=[Campaign.Status.SENDING, Campaign.Status.CANCELLED])
        .filter(Exists(pending))
        .values_list("pk", "status")
    ):
        if status == Campaign.Status.CANCELLED:
            sending.deliveries_cancel_pending(campaign_id=campaign_id)
        elif sending.campaign_has_ready_work(campaign_id=campaign_id):
            dispatched += sending.dispatch(campaign_id=campaign_id)
    for campaign_id in Campaign.objects.filter(status=Campaign.Status.SENDING).values_list("pk", flat=True):
        finished += sending.campaign_finish_if_done(campaign_id=campaign_id)
    return {"released": released, "finished": finished, "dispatched": dispatched}


@shared_task(name="campaigns.transactional_retry", queue="send", soft_time_limit=240, time_limit=300)
def transactional_retry() -> dict:
    """Beat: send the deferred transactional messages whose next attempt is due."""
    return vars(transactional.transactional_retry_due())


@worker_process_shutdown.connect
def _close_smtp_connections(**kwargs) -> None:
    sending.POOL.close()
