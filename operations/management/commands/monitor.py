"""`manage.py monitor`: flush SLO counts, read the indicators kept in the apps' tables, evaluate
alert rules and deliver notifications, in a loop.

Run one per node (Procfile `monitor`); an advisory lock lets only one evaluate at a time. Each
step's failure is logged and retried next round: the monitor must outlive what it watches.
"""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, connections

from operations.alerting import alerts_evaluate, notifications_deliver
from operations.slo import sli_collect, sli_flush

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Flush SLO counts, evaluate alert rules and deliver alert notifications in a loop."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one round, then exit.")
        parser.add_argument("--interval", type=float, default=None, help="Seconds between rounds.")

    def handle(self, *args, once, interval, **options):
        interval = interval or settings.ALERT_EVALUATION_SECONDS
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        while not stopping.is_set():
            for step in (sli_flush, sli_collect, alerts_evaluate, notifications_deliver):
                try:
                    step()
                except DatabaseError:
                    logger.warning("monitor: database unavailable during %s; retrying next round", step.__name__)
                    connections.close_all()
                except Exception:
                    logger.exception("monitor: %s failed; retrying next round", step.__name__)
            if once:
                return
            stopping.wait(interval)
