"""Prometheus metrics for web nodes and workers (prometheus-client).

With PROMETHEUS_MULTIPROC_DIR set (as the Procfile processes should), every gunicorn and
Celery child process writes its samples there and /metrics adds them up; without it, one
process reports its own. Figures that live elsewhere (queue depths, replication lag, database
connections, and the apps' own figures in operations/app_figures.py: deliveries per relay,
relay circuits, imports, buffered tracking events, queued unsubscribes, campaign bounce and
complaint rates) are read when /metrics is scraped.
"""

import logging
import os
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from operations.slo import sli_record

logger = logging.getLogger(__name__)

# herald_relay_deliveries_recent covers this many minutes (see operations/app_figures.py).
DELIVERY_WINDOW_MINUTES = 15

REQUEST_DURATION = Histogram(
    "herald_http_request_duration_seconds",
    "Time to answer a request, by view.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REQUESTS = Counter("herald_http_requests_total", "Requests answered, by view and status.", ["view", "method", "status"])
CACHE_ERRORS = Counter("herald_cache_errors_total", "Redis cache or session-cache calls that failed and were ignored.")
TASKS = Counter("herald_celery_tasks_total", "Celery tasks finished, by task and outcome.", ["task", "outcome"])
TASK_DURATION = Histogram(
    "herald_celery_task_duration_seconds",
    "Time a Celery task ran, by task.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
)


class MetricsMiddleware:
    """Times every request and counts its status, labelled by the view's URL name."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match and match.view_name else "unmatched"
        REQUEST_DURATION.labels(view, request.method).observe(time.perf_counter() - started)
        REQUESTS.labels(view, request.method, str(response.status_code)).inc()
        if request.path.startswith("/api/"):
            elapsed_ms = (time.perf_counter() - started) * 1000
            good = elapsed_ms <= settings.SLO_API_LATENCY_MS and response.status_code < 500
            sli_record(objective="api_latency", good=good)
        return response


class CacheErrorCounter(logging.Handler):
    """Counts the exceptions django-redis logs and ignores (IGNORE_EXCEPTIONS)."""

    def emit(self, record):
        CACHE_ERRORS.inc()


class LiveFiguresCollector:
    """Gauges read at scrape time from the broker and the database."""

    def collect(self):
        from operations.alert_rules import queue_depths
        from operations.health import probe_replica

        depth = GaugeMetricFamily("herald_celery_queue_depth", "Tasks waiting in each queue.", labels=["queue"])
        try:
            for name, count in queue_depths().items():
                depth.add_metric([name], count)
        except Exception as exc:  # an unreachable broker leaves the gauge empty; /health says why
            logger.warning("queue depths unavailable for /metrics: %s", exc)
        yield depth
        connections_gauge = GaugeMetricFamily(
            "herald_database_connections", "Connections to the primary, by state.", labels=["state"]
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT COALESCE(state, 'unknown'), count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() GROUP BY 1"
                )
                for state, count in cursor.fetchall():
                    connections_gauge.add_metric([state], count)
        except DatabaseError:
            pass
        yield connections_gauge
        yield from self._backups()
        yield from self._objectives()
        yield from self._sending()
        yield from self._queued_elsewhere()
        if "replica" in settings.DATABASES:
            lag = GaugeMetricFamily("herald_replication_lag_seconds", "How far the standby is behind.")
            try:
                _, detail = probe_replica()
                lag.add_metric([], detail["replication_lag_s"])
            except Exception as exc:
                logger.warning("replication lag unavailable for /metrics: %s", exc)
            yield lag

    def _sending(self):
        from operations import app_figures

        deliveries = GaugeMetricFamily(
            "herald_relay_deliveries_recent",
            f"Send attempts settled in the last {DELIVERY_WINDOW_MINUTES} minutes, by relay and outcome "
            "(sent = accepted by the relay; failed, bounced, deferred = refused).",
            labels=["relay", "workspace", "outcome"],
        )
        circuit = GaugeMetricFamily(
            "herald_relay_circuit_open",
            "1 while an active relay's circuit breaker is open or half-open (not used, or only probed), else 0.",
            labels=["relay", "workspace", "state"],
        )
        bounce = GaugeMetricFamily(
            "herald_campaign_bounce_rate",
            "Hard bounces of the deliveries, per sending campaign.",
            labels=["campaign", "workspace"],
        )
        complaint = GaugeMetricFamily(
            "herald_campaign_complaint_rate",
            "Spam complaints of the deliveries, per sending campaign.",
            labels=["campaign", "workspace"],
        )
        delivered = GaugeMetricFamily(
            "herald_campaign_deliveries",
            "Messages that left Herald (accepted or bounced), per sending campaign.",
            labels=["campaign", "workspace"],
        )
        imports = GaugeMetricFamily("herald_imports", "Imports, by status.", labels=["status"])
        import_rows = GaugeMetricFamily(
            "herald_import_rows_processed", "Rows read by imports (blank lines included), by status.", labels=["status"]
        )
        try:
            now = timezone.now()
            names = app_figures.relay_names()
            since = now - timedelta(minutes=DELIVERY_WINDOW_MINUTES)
            totals: dict[tuple, int] = {}
            for row in app_figures.delivery_outcomes(since=since, until=now):
                name, workspace = names.get(row.relay_id, ("none", "none"))
                key = (name, workspace, row.outcome)
                totals[key] = totals.get(key, 0) + row.count
            for labels, count in sorted(totals.items()):
                deliveries.add_metric(list(labels), count)
            for relay in app_figures.relay_circuits():
                circuit.add_metric([relay.name, relay.workspace, relay.state], 0 if relay.state == "closed" else 1)
            for rate in app_figures.sending_campaign_rates():
                labels = [str(rate.campaign_id), rate.workspace]
                bounce.add_metric(labels, rate.bounce_rate)
                complaint.add_metric(labels, rate.complaint_rate)
                delivered.add_metric(labels, rate.deliveries)
            for status, (count, rows) in sorted(app_figures.import_rows_by_status().items()):
                imports.add_metric([status], count)
                import_rows.add_metric([status], rows)
        except DatabaseError as exc:
            logger.warning("sending and import figures unavailable for /metrics: %s", exc)
            return
        yield from (deliveries, circuit, bounce, complaint, delivered, imports, import_rows)

    def _queued_elsewhere(self):
        from operations import app_figures

        tracking = GaugeMetricFamily(
            "herald_tracking_events_buffered",
            "Tracking events not yet in Postgres: in the Redis stream, or in this node's spool files.",
            labels=["buffer"],
        )
        for where, count in app_figures.tracking_events_buffered().items():
            tracking.add_metric([where], count)
        yield tracking
        unsubscribes = GaugeMetricFamily(
            "herald_unsubscribes_queued", "Unsubscribes waiting (Redis list and this node's spool) for the database."
        )
        unsubscribes.add_metric([], app_figures.unsubscribes_queued())
        yield unsubscribes

    def _objectives(self):
        from operations.models import SyntheticCheck
        from operations.slo import burn_rates

        burn = GaugeMetricFamily(
            "herald_slo_burn_rate",
            "How fast each objective spends its error budget over a window (1 = exactly on budget).",
            labels=["objective", "window"],
        )
        probe_ok = GaugeMetricFamily("herald_synthetic_check_ok", "1 if the newest synthetic check passed, else 0.")
        probe_age = GaugeMetricFamily("herald_synthetic_check_age_seconds", "Age of the newest synthetic check.")
        try:
            for (objective, window), (rate, _) in burn_rates().items():
                burn.add_metric([objective, window.replace(" ", "")], rate)
            latest = SyntheticCheck.objects.first()
        except DatabaseError:
            return
        if latest:
            probe_ok.add_metric([], 1 if latest.ok else 0)
            probe_age.add_metric([], (timezone.now() - latest.started_at).total_seconds())
        yield from (burn, probe_ok, probe_age)

    def _backups(self):
        from operations.models import Backup, RestoreDrill

        backup_age = GaugeMetricFamily("herald_backup_age_seconds", "Age of the newest successful backup.")
        drill_passed = GaugeMetricFamily(
            "herald_restore_drill_passed", "1 if the newest restore drill passed, 0 if it failed."
        )
        drill_age = GaugeMetricFamily("herald_restore_drill_age_seconds", "Age of the newest finished restore drill.")
        try:
            backup = Backup.objects.filter(status=Backup.Status.SUCCEEDED).first()
            drill = RestoreDrill.objects.exclude(status=RestoreDrill.Status.RUNNING).first()
        except DatabaseError:
            return
        if backup:
            backup_age.add_metric([], (timezone.now() - backup.started_at).total_seconds())
        if drill:
            drill_passed.add_metric([], 1 if drill.status == RestoreDrill.Status.PASSED else 0)
            drill_age.add_metric([], (timezone.now() - drill.started_at).total_seconds())
        yield from (backup_age, drill_passed, drill_age)


def render_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_metrics = CollectorRegistry()
        multiprocess.MultiProcessCollector(process_metrics)
    else:
        process_metrics = REGISTRY
    return generate_latest(process_metrics) + generate_latest(_live_registry())


def serve_worker_metrics(port: int, address: str) -> None:
    """A Celery worker has no web server of its own: expose its children's metrics on a port."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=address, registry=registry)


def _live_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LiveFiguresCollector())
    return registry
