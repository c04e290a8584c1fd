"""Background work of the subscribers app (scheduled in CELERY_BEAT_SCHEDULE).

Unsubscribes queued while the database was away are applied by `apply_queued_unsubscribes`.
Imports: `import_run` (on the `imports` queue) claims an import and runs or resumes it;
`imports_sweep` (every minute, from beat) queues again the imports whose worker died.
"""

from celery import shared_task


# Runs every few seconds from beat; a run delivered late or twice is harmless (see drain()).
@shared_task(name="subscribers.apply_queued_unsubscribes", queue="default", soft_time_limit=240, time_limit=280)
def apply_queued_unsubscribes() -> dict:
    """Apply the unsubscribes that web nodes queued while the database was unavailable."""
    from subscribers.unsubscribe_queue import drain

    result = drain()
    return {"applied": result.applied, "rejected": result.rejected, "remaining": result.remaining}


@shared_task(
    name="subscribers.send_confirmation",
    queue="default",
    soft_time_limit=60,
    time_limit=90,
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=20,
)
def send_confirmation(subscriber_id: int, list_id: int) -> bool:
    """Send a double opt-in email the request could not; False if there is nothing left to confirm."""
    from subscribers.models import ListMembership
    from subscribers.services import confirmation_send

    membership = (
        ListMembership.objects.select_related("subscriber", "mailing_list")
        .filter(subscriber_id=subscriber_id, mailing_list_id=list_id)
        .exclude(status=ListMembership.Status.CONFIRMED, subscriber__status="active")
        .first()
    )
    if membership is None:
        return False
    confirmation_send(subscriber=membership.subscriber, mailing_list=membership.mailing_list)
    return True


# --- Imports ----------------------------------------------------------------------------


# Acknowledged late: a worker that dies hands the message back. Claiming the import with a
# conditional update makes a second delivery, or the sweeper's, a no-op while one worker runs it.
@shared_task(
    name="subscribers.import_run", queue="imports", acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 60
)
def import_run(import_id: int) -> None:
    from subscribers.imports import import_process

    import_process(import_id=import_id)


# On the default queue: a busy imports worker must not hold up the sweep that rescues a dead one's import.
@shared_task(name="subscribers.imports_sweep", queue="default", soft_time_limit=50, time_limit=55, expires=55)
def imports_sweep() -> list[int]:
    from subscribers.imports import imports_resume_stalled

    return imports_resume_stalled()
