"""Scheduled operations jobs (see CELERY_BEAT_SCHEDULE in settings)."""

from celery import shared_task

from operations.services import backup_create, restore_drill_run


@shared_task(name="operations.backup", queue="default", soft_time_limit=3300, time_limit=3600)
def backup() -> int:
    return backup_create().pk


@shared_task(name="operations.restore_drill", queue="default", soft_time_limit=3300, time_limit=3600)
def restore_drill() -> int:
    return restore_drill_run().pk


@shared_task(
    name="operations.notify_status_subscribers",
    queue="default",
    soft_time_limit=600,
    time_limit=660,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=10,
)
def notify_status_subscribers(update_id: int) -> int:
    from operations.incidents import status_subscribers_notify
    from operations.models import IncidentUpdate

    update = IncidentUpdate.objects.select_related("incident").filter(pk=update_id).first()
    return status_subscribers_notify(update=update) if update else 0


# A check older than its interval says nothing about now: drop it rather than run it late.
@shared_task(name="operations.synthetic_check", queue="default", soft_time_limit=50, time_limit=55, expires=55)
def synthetic_check() -> bool:
    from operations.synthetic import synthetic_check_run, synthetic_checks_prune

    check = synthetic_check_run()
    synthetic_checks_prune()
    return check.ok


# The failure drills' probe: it takes `seconds`, so a drill can kill its worker in the middle.
# Acknowledged late (as every task is), so a killed worker's probe is handed to another worker.
@shared_task(name="operations.drill_probe", queue="default", soft_time_limit=120, time_limit=130)
def drill_probe(token: str, seconds: float) -> bool:
    import time

    from operations.services import drill_probe_complete, drill_probe_start

    worker = drill_probe.request.hostname or "unknown"
    drill_probe_start(token=token, worker=worker)
    time.sleep(seconds)
    return drill_probe_complete(token=token, worker=worker)
