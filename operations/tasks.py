"""Scheduled operations jobs (see CELERY_BEAT_SCHEDULE in settings)."""

from celery import shared_task

from operations.services import backup_create, restore_drill_run


@shared_task(name="operations.backup", queue="default", soft_time_limit=3300, time_limit=3600)
def backup() -> int:
    return backup_create().pk


@shared_task(name="operations.restore_drill", queue="default", soft_time_limit=3300, time_limit=3600)
def restore_drill() -> int:
    return restore_drill_run().pk
