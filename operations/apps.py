"""App configuration for operations: hooks its metrics into Celery and django-redis."""

import logging
import os
import time

from django.apps import AppConfig
from django.conf import settings


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from celery import signals

        from operations.metrics import TASK_DURATION, TASKS, CacheErrorCounter, serve_worker_metrics

        logging.getLogger("django_redis.cache").addHandler(CacheErrorCounter())

        @signals.worker_init.connect(weak=False)
        def _serve_worker_metrics(**kwargs):
            if settings.WORKER_METRICS_PORT and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                serve_worker_metrics(settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_ADDRESS)

        started = {}

        @signals.task_prerun.connect(weak=False)
        def _task_started(task_id=None, **kwargs):
            started[task_id] = time.perf_counter()

        @signals.task_postrun.connect(weak=False)
        def _task_finished(task_id=None, task=None, state=None, **kwargs):
            began = started.pop(task_id, None)
            if began is not None:
                TASK_DURATION.labels(task.name).observe(time.perf_counter() - began)
            TASKS.labels(task.name, (state or "unknown").lower()).inc()
