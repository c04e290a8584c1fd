"""Background jobs of the subscribers app (scheduled in CELERY_BEAT_SCHEDULE)."""

from celery import shared_task


# Runs every few seconds from beat; a run delivered late or twice is harmless (see drain()).
@shared_task(name="subscribers.apply_queued_unsubscribes", queue="default", soft_time_limit=240, time_limit=280)
def apply_queued_unsubscribes() -> dict:
    """Apply the unsubscribes that web nodes queued while the database was unavailable."""
    from subscribers.unsubscribe_queue import drain

    result = drain()
    return {"applied": result.applied, "rejected": result.rejected, "remaining": result.remaining}
