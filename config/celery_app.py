"""The Celery app, configured for at-least-once delivery: Postgres holds the work, the broker only hints."""

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("herald")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("send", "imports", "analytics", "default")

app.conf.update(
    # A task is acknowledged only when it has finished, and a worker that dies mid-task
    # hands its message back, so no work is lost with a process.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_default_queue="default",
    task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
    task_soft_time_limit=300,
    task_time_limit=360,
    worker_max_tasks_per_child=1000,
    worker_send_task_events=True,
    task_send_sent_event=True,
    broker_connection_retry_on_startup=True,
    timezone="UTC",
)
app.autodiscover_tasks()
