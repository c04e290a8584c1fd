"""Alerting services: evaluate the rules, keep one Alert per condition, notify the channels.

Run by the monitor process (`manage.py monitor`), deliberately not by Celery: the alert that
matters most is the one saying the workers are gone. Delivery is direct, with a timeout per
channel and retries with backoff, so a channel that hangs delays no other channel.
"""

import json
import logging
import socket
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from operations.alert_rules import RULES, Finding, Rule, runbook_link
from operations.lib import alert_messages
from operations.models import Alert, AlertChannel, AlertNotification

logger = logging.getLogger(__name__)

# Only one monitor evaluates at a time, however many nodes run one.
ADVISORY_LOCK_KEY = 0x48455241  # "HERA"
SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}


def _holding_evaluation_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        return cursor.fetchone()[0]


def alerts_evaluate(*, rules: list[Rule] | None = None) -> list[Alert] | None:
    """Measure every rule and move each alert along pending -> firing -> resolved.

    Returns the alerts that changed, or None when another monitor holds the evaluation lock.
    A rule whose measurement fails leaves its alerts as they are: not knowing is not resolved.
    """
    now = timezone.now()
    changed = []
    with transaction.atomic():
        if not _holding_evaluation_lock():
            return None
        for rule in rules or RULES:
            try:
                findings = rule.measure()
            except Exception:
                logger.exception("alert rule could not be measured", extra={"rule": rule.key})
                continue
            changed += _apply_findings(rule, findings, now)
        changed += _escalate_unacknowledged(now)
    return changed


def _apply_findings(rule: Rule, findings: list[Finding], now) -> list[Alert]:
    open_alerts = {alert.fingerprint: alert for alert in Alert.objects.filter(rule=rule.key).exclude(status="resolved")}
    changed = []
    for finding in findings:
        alert = open_alerts.pop(finding.fingerprint, None) or Alert(
            rule=rule.key, fingerprint=finding.fingerprint, first_seen_at=now, runbook=runbook_link(rule)
        )
        alert.severity, alert.summary, alert.value = finding.severity, finding.summary, finding.value
        due = (now - alert.first_seen_at).total_seconds() >= rule.for_seconds()
        if alert.status == Alert.Status.PENDING and due:
            alert.status, alert.fired_at = Alert.Status.FIRING, now
            alert.save()
            _notify(alert, AlertNotification.Kind.FIRING, now)
            changed.append(alert)
        else:
            alert.save()
    for alert in open_alerts.values():  # conditions that cleared
        if alert.status == Alert.Status.FIRING:
            alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
            alert.save(update_fields=["status", "resolved_at", "updated_at"])
            _notify(alert, AlertNotification.Kind.RESOLVED, now)
            changed.append(alert)
        else:
            alert.delete()  # it never fired, so nobody was told of it
    return changed


def _escalate_unacknowledged(now) -> list[Alert]:
    threshold = now - timedelta(minutes=settings.ALERT_ESCALATE_AFTER_MINUTES)
    overdue = Alert.objects.filter(
        status=Alert.Status.FIRING, acknowledged_at__isnull=True, escalated_at__isnull=True, fired_at__lte=threshold
    )
    escalated = []
    for alert in overdue:
        alert.escalated_at = now
        alert.save(update_fields=["escalated_at", "updated_at"])
        _notify(alert, AlertNotification.Kind.ESCALATED, now)
        escalated.append(alert)
    return escalated


def _notify(alert: Alert, kind: str, now) -> None:
    channels = AlertChannel.objects.filter(enabled=True)
    if kind == AlertNotification.Kind.ESCALATED:
        channels = channels.filter(receives_escalations=True)
    for channel in channels:
        if SEVERITY_ORDER[alert.severity] >= SEVERITY_ORDER[channel.min_severity]:
            AlertNotification.objects.get_or_create(
                alert=alert, channel=channel, kind=kind, defaults={"next_attempt_at": now}
            )


def alert_acknowledge(*, alert: Alert, by: str) -> Alert:
    """Someone is on it: stops the escalation."""
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = timezone.now(), by
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
    return alert


# --- delivery -----------------------------------------------------------------------------


def _alert_data(alert: Alert) -> dict:
    return {
        "rule": alert.rule,
        "fingerprint": alert.fingerprint,
        "severity": alert.severity,
        "summary": alert.summary,
        "value": alert.value,
        "status": alert.status,
        "runbook": alert.runbook,
        "first_seen_at": alert.first_seen_at.isoformat(),
        "fired_at": alert.fired_at.isoformat() if alert.fired_at else None,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def _post_json(url: str, payload: dict) -> None:
    request = urllib.request.Request(  # noqa: S310 - the URL is an operator-configured http(s) channel
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=settings.ALERT_DELIVERY_TIMEOUT) as response:  # noqa: S310
        response.read()


def _send(channel: AlertChannel, alert: dict, kind: str) -> None:
    """Deliver one notification; raises on any failure (HTTP errors, timeouts, SMTP errors)."""
    if channel.kind == AlertChannel.Kind.EMAIL:
        send_mail(
            alert_messages.headline(alert, kind),
            alert_messages.text_body(alert, kind),
            settings.ALERT_FROM_EMAIL,
            [channel.target],
        )
    elif channel.kind == AlertChannel.Kind.SLACK:
        _post_json(channel.target, alert_messages.slack_payload(alert, kind))
    elif channel.kind == AlertChannel.Kind.PAGERDUTY:
        source = settings.NODE_NAME or socket.gethostname()
        _post_json(channel.target, alert_messages.pagerduty_payload(alert, kind, channel.routing_key, source))
    elif channel.kind == AlertChannel.Kind.WEBHOOK:
        _post_json(channel.target, alert_messages.webhook_payload(alert, kind))
    else:
        raise ValueError(f"unknown channel type {channel.kind!r}")


def retry_delay(attempts: int) -> timedelta:
    """Backoff between delivery attempts: 5 s, 10 s, 20 s ... at most 5 minutes."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 300))


def notifications_deliver() -> int:
    """Send every notification that is due, in parallel; returns how many were delivered."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            AlertNotification.objects.select_for_update(skip_locked=True)
            .select_related("alert", "channel")
            .filter(status=AlertNotification.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[:100]
        )
        if not due:
            return 0
        with ThreadPoolExecutor(max_workers=min(8, len(due))) as pool:
            outcomes = list(pool.map(_attempt, due))
        delivered = 0
        for notification, error in zip(due, outcomes, strict=True):
            notification.attempts += 1
            if error is None:
                notification.status, notification.sent_at, notification.last_error = "sent", timezone.now(), ""
                delivered += 1
            else:
                notification.last_error = error
                if notification.attempts >= settings.ALERT_MAX_ATTEMPTS:
                    notification.status = AlertNotification.Status.FAILED
                    logger.error("alert notification abandoned", extra={"channel": notification.channel.name})
                else:
                    notification.next_attempt_at = timezone.now() + retry_delay(notification.attempts)
            notification.save()
    return delivered


def _attempt(notification: AlertNotification) -> str | None:
    try:
        _send(notification.channel, _alert_data(notification.alert), notification.kind)
    except Exception as exc:  # every failure is recorded and retried, whatever it was
        return f"{type(exc).__name__}: {exc}"[:1000]
    return None
