"""Alerts fire through the configured channels, are grouped, escalate, resolve, and survive a
channel that hangs. The queue and the webhook receivers are real."""

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from config.celery_app import app as celery_app
from operations.alert_rules import RULES, Finding, Rule
from operations.alerting import ADVISORY_LOCK_KEY, alert_acknowledge, alerts_evaluate, notifications_deliver
from operations.lib.postgres_tools import conninfo_from_django
from operations.models import Alert, AlertChannel, AlertNotification
from tests.mail import outbox

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


class Receiver:
    """A local HTTP endpoint that records the JSON posted to it; it can be made slow or failing."""

    def __init__(self):
        self.received: list[dict] = []
        self.delay = 0.0
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                if receiver.status == 200:
                    receiver.received.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def alert_settings(settings):
    settings.ALERT_FOR_SECONDS = 0
    settings.ALERT_QUEUE_DEPTH_WARNING = 3
    settings.ALERT_QUEUE_DEPTH_CRITICAL = 1000
    settings.ALERT_DELIVERY_TIMEOUT = 0.5
    settings.ALERT_WORKER_PING_SECONDS = 0.5
    return settings


@pytest.fixture
def waiting_tasks():
    """Puts tasks in the real broker's `imports` queue (no worker consumes it here).

    Every queue starts empty: other tests may leave messages behind (work queued on commit with no
    worker running), and each queue holding any counts towards the alert.
    """
    for queue in ("send", "imports", "analytics", "default"):
        purge(queue)

    def enqueue(count: int):
        for _ in range(count):
            celery_app.send_task("tests.never_runs", queue="imports")

    yield enqueue
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("imports")


def purge(queue: str) -> None:
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)


def rule_named(key: str) -> Rule:
    return next(rule for rule in RULES if rule.key == key)


def webhook(receiver, **fields) -> AlertChannel:
    return AlertChannel.objects.create(
        name=fields.pop("name", "ops hook"), kind="webhook", target=receiver.url, **fields
    )


def test_queue_depth_alert_fires_and_resolves_through_the_webhook(alert_settings, receiver, waiting_tasks):
    webhook(receiver)
    waiting_tasks(5)
    alerts_evaluate(rules=[rule_named("queue_depth")])
    notifications_deliver()
    assert len(receiver.received) == 1
    fired = receiver.received[0]
    assert fired["event"] == "firing"
    assert fired["alert"]["fingerprint"] == "queue_depth:imports"
    assert fired["alert"]["value"] == 5
    assert fired["alert"]["runbook"].endswith("platform/runbooks/queue-depth.md")

    purge("imports")
    alerts_evaluate(rules=[rule_named("queue_depth")])
    notifications_deliver()
    assert [body["event"] for body in receiver.received] == ["firing", "resolved"]
    assert Alert.objects.get().status == Alert.Status.RESOLVED


def test_repeats_of_a_firing_alert_are_grouped_into_one_notification(alert_settings, receiver, waiting_tasks):
    webhook(receiver)
    waiting_tasks(4)
    for _ in range(3):
        alerts_evaluate(rules=[rule_named("queue_depth")])
        notifications_deliver()
    assert len(receiver.received) == 1
    assert Alert.objects.count() == 1


def test_a_condition_shorter_than_the_for_duration_never_notifies(alert_settings, receiver, waiting_tasks):
    alert_settings.ALERT_FOR_SECONDS = 60
    webhook(receiver)
    waiting_tasks(4)
    alerts_evaluate(rules=[rule_named("queue_depth")])
    assert Alert.objects.get().status == Alert.Status.PENDING
    purge("imports")
    alerts_evaluate(rules=[rule_named("queue_depth")])
    notifications_deliver()
    assert receiver.received == []
    assert not Alert.objects.exists()


def test_waiting_tasks_without_any_worker_raise_a_critical_alert(alert_settings, receiver, waiting_tasks):
    webhook(receiver, min_severity="critical")
    waiting_tasks(1)
    alerts_evaluate(rules=[rule_named("workers_missing")])
    notifications_deliver()
    assert receiver.received[0]["alert"]["severity"] == "critical"
    assert "No Celery worker answers" in receiver.received[0]["alert"]["summary"]


@pytest.mark.slow
def test_a_live_worker_keeps_the_workers_alert_quiet(alert_settings, waiting_tasks):
    alert_settings.ALERT_WORKER_PING_SECONDS = 3  # the default's margin: a busy machine answers slowly
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "config",
            "worker",
            "--queues",
            "send",
            "--pool",
            "solo",
            "--hostname",
            "alerting-test@%h",
            "--loglevel",
            "WARNING",
        ],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not celery_app.control.ping(timeout=0.5):
            assert time.monotonic() < deadline, "the worker never answered"
        waiting_tasks(1)
        alerts_evaluate(rules=[rule_named("workers_missing")])
        assert not Alert.objects.exists()
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_a_channel_that_times_out_does_not_hold_up_the_others(alert_settings, waiting_tasks):
    slow, fast = Receiver(), Receiver()
    try:
        slow.delay = 2
        webhook(slow, name="slow")
        webhook(fast, name="fast")
        waiting_tasks(4)
        alerts_evaluate(rules=[rule_named("queue_depth")])
        assert notifications_deliver() == 1
        assert len(fast.received) == 1
        stuck = AlertNotification.objects.get(channel__name="slow")
        assert stuck.status == AlertNotification.Status.PENDING
        assert stuck.attempts == 1
        assert "timed out" in stuck.last_error
        # The retry goes through once the channel answers again.
        slow.delay = 0
        AlertNotification.objects.filter(pk=stuck.pk).update(next_attempt_at=timezone.now())
        assert notifications_deliver() == 1
        stuck.refresh_from_db()
        assert stuck.status == AlertNotification.Status.SENT
        assert slow.received[0]["event"] == "firing"
    finally:
        slow.close()
        fast.close()


def test_a_failing_channel_is_retried_then_given_up(alert_settings, receiver, waiting_tasks):
    alert_settings.ALERT_MAX_ATTEMPTS = 2
    receiver.status = 500
    webhook(receiver)
    waiting_tasks(4)
    alerts_evaluate(rules=[rule_named("queue_depth")])
    notifications_deliver()
    AlertNotification.objects.update(next_attempt_at=timezone.now())
    notifications_deliver()
    notification = AlertNotification.objects.get()
    assert notification.status == AlertNotification.Status.FAILED
    assert notification.attempts == 2
    assert "500" in notification.last_error


def always(*findings):
    return Rule("test_rule", "test", "queue-depth.md", lambda: list(findings))


def test_an_unacknowledged_alert_escalates_once(alert_settings, receiver):
    webhook(receiver)
    AlertChannel.objects.create(name="no escalations", kind="webhook", target=receiver.url, receives_escalations=False)
    rule = always(Finding("test:one", "critical", "something broke"))
    alerts_evaluate(rules=[rule])
    Alert.objects.update(fired_at=timezone.now() - timedelta(minutes=alert_settings.ALERT_ESCALATE_AFTER_MINUTES + 1))
    alerts_evaluate(rules=[rule])
    alerts_evaluate(rules=[rule])
    notifications_deliver()
    events = sorted(body["event"] for body in receiver.received)
    assert events == ["escalated", "firing", "firing"]


def test_an_acknowledged_alert_does_not_escalate(alert_settings, receiver):
    webhook(receiver)
    rule = always(Finding("test:one", "critical", "something broke"))
    alerts_evaluate(rules=[rule])
    alert = Alert.objects.get()
    alert_acknowledge(alert=alert, by="oncall@example.com")
    Alert.objects.update(fired_at=timezone.now() - timedelta(hours=5))
    alerts_evaluate(rules=[rule])
    notifications_deliver()
    assert [body["event"] for body in receiver.received] == ["firing"]


def test_channels_only_hear_of_severities_they_asked_for(alert_settings, receiver):
    webhook(receiver, min_severity="critical")
    alerts_evaluate(rules=[always(Finding("test:warn", "warning", "a small thing"))])
    notifications_deliver()
    assert receiver.received == []


def test_a_rule_that_cannot_be_measured_leaves_its_alert_firing(alert_settings, receiver):
    webhook(receiver)
    alerts_evaluate(rules=[always(Finding("test:one", "critical", "something broke"))])

    def broken():
        raise ConnectionError("broker unreachable")

    alerts_evaluate(rules=[Rule("test_rule", "test", "queue-depth.md", broken)])
    assert Alert.objects.get().status == Alert.Status.FIRING


def test_pagerduty_events_trigger_and_resolve_with_one_dedup_key(alert_settings, receiver):
    AlertChannel.objects.create(name="pd", kind="pagerduty", target=receiver.url, routing_key="R0UT1NG")
    finding = Finding("test:pd", "critical", "pager me")
    alerts_evaluate(rules=[always(finding)])
    alerts_evaluate(rules=[always()])
    notifications_deliver()
    trigger, resolve = sorted(receiver.received, key=lambda body: body["event_action"] != "trigger")
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == "R0UT1NG"
    assert trigger["payload"]["severity"] == "critical"
    assert resolve == {"routing_key": "R0UT1NG", "event_action": "resolve", "dedup_key": "test:pd"}


def test_slack_channel_gets_a_readable_message(alert_settings, receiver):
    AlertChannel.objects.create(name="slack", kind="slack", target=receiver.url)
    alerts_evaluate(rules=[always(Finding("test:s", "warning", "disk almost full", 93))])
    notifications_deliver()
    assert receiver.received[0]["text"].startswith("[Herald FIRING] [warning] disk almost full")


def test_email_channel_sends_a_message(alert_settings, smtp_sink):
    AlertChannel.objects.create(name="mail", kind="email", target="oncall@example.com")
    alerts_evaluate(rules=[always(Finding("test:e", "critical", "mail me"))])
    notifications_deliver()
    assert outbox()[0].to == ["oncall@example.com"]
    assert outbox()[0].subject == "[Herald FIRING] [critical] mail me"


def test_an_unknown_channel_type_is_refused():
    channel = AlertChannel(name="fax", kind="fax", target="https://example.com")
    with pytest.raises(ValidationError) as error:
        channel.full_clean()
    assert "kind" in error.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        channel.save()


@pytest.mark.parametrize(
    ("kind", "target", "field"),
    [
        ("email", "https://example.com", "target"),
        ("webhook", "not a url", "target"),
        ("pagerduty", "https://x.io", "routing_key"),
    ],
)
def test_a_channel_with_a_bad_target_is_refused(kind, target, field):
    with pytest.raises(ValidationError) as error:
        AlertChannel(name="bad", kind=kind, target=target).full_clean()
    assert field in error.value.message_dict


def test_the_admin_refuses_an_unknown_channel_type(admin_client):
    response = admin_client.post(
        reverse("admin:operations_alertchannel_add"),
        {"name": "x", "kind": "fax", "target": "https://example.com", "min_severity": "warning", "enabled": "on"},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not AlertChannel.objects.exists()


def test_only_one_monitor_evaluates_at_a_time(alert_settings):
    with psycopg.connect(conninfo_from_django(connection.settings_dict), autocommit=True) as other_monitor:
        other_monitor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        assert alerts_evaluate(rules=[always(Finding("test:x", "critical", "x"))]) is None
        # Released explicitly: a closed connection's backend may keep the lock for a moment.
        other_monitor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    assert alerts_evaluate(rules=[always(Finding("test:x", "critical", "x"))]) is not None


def test_every_rule_links_a_runbook_that_exists():
    for rule in RULES:
        assert (REPO / "platform" / "runbooks" / rule.runbook).is_file(), rule.key


def rule(key):
    return next(rule for rule in RULES if rule.key == key)


def test_a_fast_error_budget_burn_is_critical_and_a_healthy_objective_is_quiet(settings):
    from operations.models import SliMinute

    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    # 2 % of sign-ins failing against a 99.95 % target burns the budget 40x too fast.
    SliMinute.objects.create(objective="dashboard_availability", minute=minute, source="buffer", good=98, total=100)
    SliMinute.objects.create(objective="api_latency", minute=minute, source="buffer", good=100, total=100)
    (finding,) = rule("slo_burn").measure()
    assert finding.severity == "critical"
    assert finding.fingerprint == "slo_burn:dashboard_availability:1h"
    assert "Dashboard availability" in finding.summary and "40.0x" in finding.summary


def test_too_few_events_never_alert_on_burn_rate(settings):
    from operations.models import SliMinute

    settings.ALERT_SLO_MIN_EVENTS = 10
    minute = timezone.now().replace(second=0, microsecond=0)
    SliMinute.objects.create(objective="send_success", minute=minute, source="buffer", good=0, total=3)
    assert rule("slo_burn").measure() == []


def test_a_failing_synthetic_check_is_critical_and_a_silent_probe_warns(settings):
    from operations.models import SyntheticCheck

    assert rule("synthetic").measure() == []  # never run yet: nothing to say
    SyntheticCheck.objects.create(
        started_at=timezone.now(), ok=False, duration_ms=5, failed_step="sign_in", error="could not connect"
    )
    (failing,) = rule("synthetic").measure()
    assert failing.severity == "critical" and "sign_in: could not connect" in failing.summary

    SyntheticCheck.objects.all().update(started_at=timezone.now() - timedelta(minutes=30), ok=True)
    (stale,) = rule("synthetic").measure()
    assert stale.severity == "warning" and "30 minutes" in stale.summary
