"""`manage.py monitor`: evaluate alert rules and deliver notifications, every few seconds, forever.

Run one per node (Procfile `monitor`); an advisory lock lets only one evaluate at a time.
"""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, connections

from operations.alerting import alerts_evaluate, notifications_deliver


class Command(BaseCommand):
    help = "Evaluate alert rules and deliver alert notifications in a loop."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Evaluate and deliver once, then exit.")
        parser.add_argument("--interval", type=float, default=None, help="Seconds between rounds.")

    def handle(self, *args, once, interval, **options):
        interval = interval or settings.ALERT_EVALUATION_SECONDS
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        while not stopping.is_set():
            try:
                changed = alerts_evaluate()
                delivered = notifications_deliver()
                if changed or delivered:
                    self.stdout.write(f"alerts changed: {len(changed or [])}, notifications delivered: {delivered}")
            except DatabaseError as exc:
                # Alert state lives in Postgres; while it is away, try again next round.
                self.stderr.write(f"monitor: database unavailable ({exc}); retrying")
                connections.close_all()
            if once:
                return
            stopping.wait(interval)
