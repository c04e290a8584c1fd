"""Celery tasks of bounce intake: read the inbound mailbox, judge campaign rates, tell owners of a pause."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from campaigns import bounces, mailbox


@shared_task(name="campaigns.bounce_mailbox", queue="default", soft_time_limit=120, time_limit=150)
def read_bounce_mailbox() -> dict:
    """Beat: take in the reports and unsubscribe requests waiting in BOUNCE_MAILBOX_DIR (when set)."""
    result = {}
    if settings.BOUNCE_MAILBOX_DIR:
        result = vars(mailbox.mailbox_process(directory=settings.BOUNCE_MAILBOX_DIR))
    result["paused"] = bounces.campaigns_check_rates()
    return result


@shared_task(
    name="campaigns.notify_campaign_paused",
    queue="default",
    soft_time_limit=60,
    time_limit=90,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def notify_campaign_paused(campaign_id: int, reason: str) -> int:
    """Email the workspace's owners why their campaign paused itself (SMTP errors are retried)."""
    return bounces.campaign_paused_notify(campaign_id=campaign_id, reason=reason)
