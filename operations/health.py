"""Checks of the shared components behind Herald, each reporting ok, degraded or down with its latency.

The database is the source of truth, so its loss makes the whole platform `down`; Redis and
the broker only speed things up or carry hints, so their loss makes it `degraded`.
"""

import contextlib
import time
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone
from django_redis import get_redis_connection
from kombu import Connection

OK, DEGRADED, DOWN = "ok", "degraded", "down"
_SEVERITY = {OK: 0, DEGRADED: 1, DOWN: 2}


@dataclass
class ComponentHealth:
    name: str
    status: str
    latency_ms: float
    critical: bool
    detail: dict = field(default_factory=dict)
    error: str | None = None


def run_check(name: str, critical: bool, probe) -> ComponentHealth:
    started = time.perf_counter()
    try:
        status, detail = probe()
        error = None
    except Exception as exc:  # a check must report any failure, never raise it
        status, detail, error = DOWN, {}, _describe(exc)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return ComponentHealth(
        name=name, status=status, latency_ms=latency_ms, critical=critical, detail=detail, error=error
    )


def _hours_since(moment) -> float:
    return round((timezone.now() - moment).total_seconds() / 3600, 2)


def probe_backups():
    """A recent successful backup, and a recent passing restore drill, once each is due."""
    from django.db.migrations.recorder import MigrationRecorder

    from operations.models import Backup, RestoreDrill

    installed_at = MigrationRecorder.Migration.objects.order_by("applied").values_list("applied", flat=True).first()
    backup = Backup.objects.filter(status=Backup.Status.SUCCEEDED).first()
    drill = RestoreDrill.objects.exclude(status=RestoreDrill.Status.RUNNING).first()
    detail = {
        "last_backup_at": backup.started_at.isoformat() if backup else None,
        "last_backup_age_h": _hours_since(backup.started_at) if backup else None,
        "last_restore_drill_at": drill.started_at.isoformat() if drill else None,
        "last_restore_drill_status": drill.status if drill else None,
    }
    problems = []
    # Measured from the last backup, or for a new installation from when it was set up.
    if _hours_since(backup.started_at if backup else installed_at) > settings.BACKUP_MAX_AGE_HOURS:
        problems.append("no backup within BACKUP_MAX_AGE_HOURS")
    if drill and drill.status == RestoreDrill.Status.FAILED:
        problems.append("the last restore drill failed")
    if _hours_since(drill.started_at if drill else installed_at) > settings.RESTORE_DRILL_MAX_AGE_HOURS:
        problems.append("no restore drill within RESTORE_DRILL_MAX_AGE_HOURS")
    if problems:
        detail["problems"] = problems
    return (DEGRADED if problems else OK), detail


def _describe(exc: Exception) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def probe_database():
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        (in_recovery,) = cursor.fetchone()
    if in_recovery:
        # Writes would fail: we are talking to a standby (a failover has not reached us yet).
        return DEGRADED, {"role": "standby", "writable": False}
    return OK, {"role": "primary", "writable": True}


def probe_replica():
    with connections["replica"].cursor() as cursor:
        # Lag is the age of the last replayed transaction only while WAL is waiting to be
        # replayed; a caught-up standby of an idle primary has no lag, however old that is.
        cursor.execute(
            "SELECT pg_is_in_recovery(), CASE"
            " WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0"
            " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float"
        )
        in_recovery, lag = cursor.fetchone()
    lag = round(lag, 3) if in_recovery else 0.0
    status = OK if lag <= settings.REPLICA_MAX_LAG_SECONDS else DEGRADED
    return status, {"in_recovery": in_recovery, "replication_lag_s": lag}


def probe_redis():
    client = get_redis_connection("default")
    client.ping()
    info = client.info("replication")
    return OK, {"role": info.get("role")}


def probe_broker():
    with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
        conn.ensure_connection(max_retries=1, timeout=1, interval_start=0, interval_step=0)
    return OK, {"transport": settings.CELERY_BROKER_URL.split("://", 1)[0]}


def _close_quietly(alias: str) -> None:
    # A broken connection must not be reused by the next request on this thread.
    with contextlib.suppress(DatabaseError):
        connections[alias].close()


def check_all() -> dict:
    """Every component's health and the overall status, as the /health endpoint reports it."""
    components = [run_check("database", True, probe_database)]
    if components[0].status == DOWN:
        _close_quietly("default")
    if "replica" in settings.DATABASES:
        replica = run_check("database_replica", False, probe_replica)
        if replica.status == DOWN:
            _close_quietly("replica")
        components.append(replica)
    components.append(run_check("redis", False, probe_redis))
    components.append(run_check("broker", False, probe_broker))
    if components[0].status != DOWN:
        components.append(run_check("backups", False, probe_backups))
    overall = OK
    for component in components:
        effective = component.status if component.critical or component.status != DOWN else DEGRADED
        if _SEVERITY[effective] > _SEVERITY[overall]:
            overall = effective
    return {
        "status": overall,
        "components": {component.name: _public(component) for component in components},
    }


def _public(component: ComponentHealth) -> dict:
    data = asdict(component)
    data.pop("name")
    if data["error"] is None:
        data.pop("error")
    return data
