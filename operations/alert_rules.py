"""The conditions Herald alerts on. Each rule measures something and returns its findings:
one per condition that currently breaks a threshold (an empty list means all is well).

The same thresholds are shipped for Prometheus users in platform/alerts.rules.yml.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from kombu.exceptions import ChannelError

from config.celery_app import QUEUES
from config.celery_app import app as celery_app


@dataclass(frozen=True)
class Finding:
    fingerprint: str
    severity: str
    summary: str
    value: float | None = None


@dataclass(frozen=True)
class Rule:
    key: str
    description: str
    runbook: str
    measure: Callable[[], list[Finding]]
    for_seconds: Callable[[], float] = lambda: settings.ALERT_FOR_SECONDS


def queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue, read from the broker."""
    depths = {}
    with celery_app.connection_for_read() as connection:
        for name in QUEUES:
            # A channel per queue: on AMQP a failed passive declare closes its channel.
            channel = connection.channel()
            try:
                depths[name] = channel.queue_declare(queue=name, passive=True).message_count
            except ChannelError:
                depths[name] = 0  # never declared: nothing was ever sent to it
            finally:
                channel.close()
    return depths


def _queue_depth() -> list[Finding]:
    findings = []
    for name, depth in queue_depths().items():
        if depth >= settings.ALERT_QUEUE_DEPTH_CRITICAL:
            severity = "critical"
        elif depth >= settings.ALERT_QUEUE_DEPTH_WARNING:
            severity = "warning"
        else:
            continue
        findings.append(
            Finding(f"queue_depth:{name}", severity, f"{depth} tasks are waiting in the {name!r} queue", depth)
        )
    return findings


def _workers_missing() -> list[Finding]:
    waiting = {name: depth for name, depth in queue_depths().items() if depth}
    if not waiting:
        return []
    if celery_app.control.ping(timeout=settings.ALERT_WORKER_PING_SECONDS):
        return []
    total = sum(waiting.values())
    return [Finding("workers_missing", "critical", f"No Celery worker answers while {total} tasks wait", total)]


def _replication_lag() -> list[Finding]:
    if "replica" not in settings.DATABASES:
        return []
    from operations.health import DOWN, probe_replica, run_check

    result = run_check("database_replica", False, probe_replica)
    if result.status == DOWN:
        return [Finding("replication:down", "critical", f"The database standby is unreachable ({result.error})")]
    lag = result.detail["replication_lag_s"]
    if lag >= settings.ALERT_REPLICATION_LAG_SECONDS:
        return [Finding("replication:lag", "warning", f"The standby is {lag:.0f} s behind the primary", lag)]
    return []


def _backups() -> list[Finding]:
    from operations.health import probe_backups

    _, detail = probe_backups()
    findings = []
    for problem in detail.get("problems", []):
        severity = "critical" if "failed" in problem else "warning"
        key = problem.split(" within ")[0].replace(" ", "_")
        findings.append(Finding(f"backups:{key}", severity, f"Backups: {problem}"))
    return findings


def _slo_burn() -> list[Finding]:
    """Multi-window burn-rate alerts: fast burn pages, slow burn warns (Google SRE workbook)."""
    from operations.slo import OBJECTIVES, burn_rates

    rates = burn_rates()
    findings = []
    for objective, (title, _) in OBJECTIVES.items():
        for window, threshold, severity in (
            ("1 h", settings.ALERT_SLO_FAST_BURN, "critical"),
            ("24 h", settings.ALERT_SLO_SLOW_BURN, "warning"),
        ):
            rate, events = rates.get((objective, window), (0.0, 0))
            if events >= settings.ALERT_SLO_MIN_EVENTS and rate >= threshold:
                findings.append(
                    Finding(
                        f"slo_burn:{objective}:{window.replace(' ', '')}",
                        severity,
                        f"{title} is spending its error budget {rate:.1f}x too fast over {window}",
                        rate,
                    )
                )
                break  # the fast burn says it all; no second finding for the slow one
    return findings


def _synthetic() -> list[Finding]:
    from django.utils import timezone

    from operations.models import SyntheticCheck

    latest = SyntheticCheck.objects.first()
    if latest is None:
        return []  # never run: nothing to compare against yet (a fresh install)
    age = (timezone.now() - latest.started_at).total_seconds()
    if age > settings.ALERT_SYNTHETIC_STALE_SECONDS:
        return [Finding("synthetic:stale", "warning", f"No synthetic check has run for {age / 60:.0f} minutes", age)]
    if not latest.ok:
        return [
            Finding(
                "synthetic:failing",
                "critical",
                f"The synthetic check fails at {latest.failed_step}: {latest.error}",
            )
        ]
    return []


def _relay_circuits() -> list[Finding]:
    """An open circuit warns; every relay a workspace (or the platform) has being open pages:
    its campaigns cannot send at all. A group whose relays are all open gets the page alone."""
    from operations.app_figures import relay_circuits

    groups: dict[str, list] = {}
    for relay in relay_circuits():
        groups.setdefault(relay.workspace, []).append(relay)
    findings = []
    for workspace, relays in sorted(groups.items()):
        broken = [relay for relay in relays if relay.state != "closed"]
        owner = "the platform's default relays" if workspace == "platform" else f"workspace {workspace!r}'s relays"
        if broken and len(broken) == len(relays):
            findings.append(
                Finding(
                    f"relay_circuit:all:{workspace}",
                    "critical",
                    f"Every one of {owner} has an open circuit ({', '.join(r.name for r in broken)}): nothing sends",
                    len(broken),
                )
            )
            continue
        for relay in broken:
            findings.append(
                Finding(
                    f"relay_circuit:{relay.relay_id}",
                    "warning",
                    f"Relay {relay.name!r} ({owner}) has an open circuit after {relay.failures} failures",
                    relay.failures,
                )
            )
    return findings


def _campaign_rate(kind: str) -> list[Finding]:
    from operations.app_figures import sending_campaign_rates

    warning = getattr(settings, f"ALERT_{kind.upper()}_RATE_WARNING")
    critical = getattr(settings, f"ALERT_{kind.upper()}_RATE_CRITICAL")
    findings = []
    for campaign in sending_campaign_rates():
        if campaign.deliveries < settings.ALERT_CAMPAIGN_MIN_DELIVERIES:
            continue  # a handful of early reports would swing the rate wildly
        percent = 100 * (campaign.complaint_rate if kind == "complaint" else campaign.bounce_rate)
        if percent >= critical:
            severity = "critical"
        elif percent >= warning:
            severity = "warning"
        else:
            continue
        what = "complaint" if kind == "complaint" else "hard-bounce"
        findings.append(
            Finding(
                f"{kind}_rate:{campaign.campaign_id}",
                severity,
                f"Campaign {campaign.name!r} (workspace {campaign.workspace!r}) has a {what} rate of "
                f"{percent:.2f}% over {campaign.deliveries:,} deliveries",
                percent,
            )
        )
    return findings


RULES: list[Rule] = [
    Rule("queue_depth", "Tasks pile up in a Celery queue.", "queue-depth.md", _queue_depth),
    Rule("workers_missing", "Tasks wait and no worker answers.", "workers-missing.md", _workers_missing),
    Rule("replication", "The standby lags or is gone.", "replication.md", _replication_lag),
    Rule("backups", "Backups or restore drills are overdue or failing.", "backups.md", _backups, lambda: 0),
    Rule("slo_burn", "An objective spends its error budget too fast.", "slo-burn.md", _slo_burn),
    Rule("synthetic", "The synthetic probe cannot sign in, load the dashboard or send.", "synthetic.md", _synthetic),
    Rule("relay_circuit", "An SMTP relay's circuit breaker is open.", "relay-circuit.md", _relay_circuits),
    Rule(
        "complaint_rate",
        "A sending campaign nears Gmail's 0.3% complaint limit.",
        "complaint-rate.md",
        lambda: _campaign_rate("complaint"),
        lambda: 0,  # a campaign can burn a sender's reputation in minutes: no waiting
    ),
    Rule(
        "bounce_rate",
        "A sending campaign hard-bounces too often.",
        "bounce-rate.md",
        lambda: _campaign_rate("bounce"),
        lambda: 0,
    ),
]


def runbook_link(rule: Rule) -> str:
    base = settings.ALERT_RUNBOOK_BASE_URL.rstrip("/")
    return f"{base}/{rule.runbook}" if base else f"platform/runbooks/{rule.runbook}"
