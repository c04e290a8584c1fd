"""End to end: real workers stop, the real monitor process notices, the webhook hears of it.

Stopping every worker lets tasks pile up; the queue-depth alert must reach the configured
webhook within two minutes, and starting workers again must resolve it.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from config.celery_app import app as celery_app
from operations.models import AlertChannel
from tests.operations.test_alerting import REPO, Receiver
from tests.workers import database_url_for_tests, running_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MONITOR_ENV = {"ALERT_FOR_SECONDS": "5", "ALERT_QUEUE_DEPTH_WARNING": "5", "ALERT_WORKER_PING_SECONDS": "1"}


def enqueue(count):
    # Any task will do: what matters is that nothing consumes the queue.
    for _ in range(count):
        celery_app.send_task("operations.notify_status_subscribers", args=[0], queue="default")


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic() - (deadline - timeout)
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout} s")


def queue_depth_events(receiver, event):
    return [hook for hook in receiver.received if hook["event"] == event and hook["alert"]["rule"] == "queue_depth"]


@pytest.fixture
def monitor():
    environment = dict(os.environ, DATABASE_URL=database_url_for_tests(), **MONITOR_ENV)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "monitor", "--interval", "1"],
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield process
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)


def test_stopping_every_worker_fires_the_queue_depth_alert_and_starting_them_resolves_it(monitor):
    receiver = Receiver()
    AlertChannel.objects.create(name="ops hook", kind="webhook", target=receiver.url)
    try:
        with contextlib.ExitStack() as workers:
            worker1 = workers.enter_context(running_worker(queues=("default",)))
            worker2 = workers.enter_context(running_worker(queues=("default",)))
            enqueue(20)
            time.sleep(8)  # longer than ALERT_FOR_SECONDS: busy workers keep the queue short
            assert queue_depth_events(receiver, "firing") == []

            worker1.kill(signal.SIGKILL)
            worker2.kill(signal.SIGKILL)
            enqueue(20)
            fired_after = wait_for(lambda: queue_depth_events(receiver, "firing"), timeout=120)
            print(f"queue-depth alert reached the webhook {fired_after:.1f} s after both workers died")

        with running_worker(queues=("default",)), running_worker(queues=("default",)):
            resolved_after = wait_for(lambda: queue_depth_events(receiver, "resolved"), timeout=120)
            print(f"resolved {resolved_after:.1f} s after the workers came back")
        (firing,) = queue_depth_events(receiver, "firing")
        assert firing["alert"]["severity"] == "warning"
    finally:
        receiver.close()
