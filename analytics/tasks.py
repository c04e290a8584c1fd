"""Analytics tasks (queue `analytics`): drain the tracking buffer, read the ledger and the audience.

Beat triggers `analytics.drain` every ANALYTICS_DRAIN_SECONDS; each run drains until the stream
is empty or its time budget is spent. Only one drain works at a time (a Redis lock); a second
one, or a message delivered twice, finds nothing to do.
"""

import contextlib
import logging
import time

from celery import shared_task
from django.conf import settings
from redis.exceptions import RedisError

from analytics import buffer, services

logger = logging.getLogger(__name__)

DRAIN_BUDGET_SECONDS = 20


def drain_stream(*, batch: int | None = None, budget_seconds: float = DRAIN_BUDGET_SECONDS) -> int:
    """Move buffered events into Postgres; returns how many were read from the stream.

    Events are deleted from the stream only after the transaction that stored them committed;
    a crash in between leaves them to be read again, and their uids make the second insert a
    no-op, so nothing is counted twice and nothing is lost.
    """
    batch = batch or settings.ANALYTICS_DRAIN_BATCH
    deadline = time.monotonic() + budget_seconds
    moved = 0
    try:
        buffer.spool_flush()
    except (RedisError, OSError):
        logger.warning("Could not flush the local tracking spool yet", exc_info=True)
    while time.monotonic() < deadline:
        entries = buffer.stream_read(batch)
        if not entries:
            break
        services.events_ingest(events=[event for _, event in entries if event])
        buffer.stream_delete([stream_id for stream_id, _ in entries])
        moved += len(entries)
        if len(entries) < batch:
            break
    return moved


@shared_task(name="analytics.drain", queue="analytics", soft_time_limit=60, time_limit=90)
def drain() -> int:
    lock = buffer.redis_client().lock("herald:analytics:drain-lock", timeout=90, blocking=False)
    if not lock.acquire():
        return 0
    try:
        return drain_stream()
    finally:
        with contextlib.suppress(RedisError):
            lock.release()


@shared_task(name="analytics.sync_ledger", queue="analytics", soft_time_limit=120, time_limit=150)
def sync_ledger() -> int:
    """Read new delivery outcomes and unsubscribes until caught up (bounded per run)."""
    read = 0
    for _ in range(20):
        step = services.ledger_sync() + services.unsubscribes_sync()
        read += step
        if not step:
            break
    return read


@shared_task(name="analytics.audience_stats", queue="analytics", soft_time_limit=120, time_limit=150)
def audience_stats() -> int:
    return services.audience_stats_refresh()
