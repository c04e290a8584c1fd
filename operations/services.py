"""Writes for operations: taking backups and running restore drills."""

import logging
import random
import shutil
from datetime import datetime
from pathlib import Path

import psycopg
from django.apps import apps
from django.conf import settings
from django.db import connections
from django.utils import timezone
from psycopg import sql

from common.local_services import LocalPostgres, service_tempdir, stop_process
from operations.lib import postgres_tools
from operations.models import Backup, RestoreDrill

logger = logging.getLogger(__name__)

SAMPLE_ROWS_PER_TABLE = 5


def herald_tables() -> list[str]:
    """Every table behind a concrete model: what a backup must hold and a drill must find."""
    existing = set(connections["default"].introspection.table_names())
    tables = {model._meta.db_table for model in apps.get_models() if model._meta.managed and not model._meta.proxy}
    return sorted(tables & existing)


def _count_rows(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    return {
        table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
        for table in tables
    }


def backup_create() -> Backup:
    """Dump the database with pg_dump (custom format) into BACKUP_DIR and prune old dumps.

    The dump and the row counts come from one exported snapshot, so the counts recorded here
    are exactly what the file holds, however much is written while it runs.
    """
    started_at = timezone.now()
    backup = Backup.objects.create(started_at=started_at)
    directory = Path(settings.BACKUP_DIR)
    file_name = f"herald-{started_at:%Y%m%dT%H%M%SZ}-{backup.pk}.dump"
    partial = directory / f"{file_name}.partial"
    conninfo = postgres_tools.conninfo_from_django(connections["default"].settings_dict)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with psycopg.connect(conninfo, autocommit=False) as snapshot_holder:
            snapshot_holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = snapshot_holder.execute("SELECT pg_export_snapshot()").fetchone()[0]
            counts = _count_rows(snapshot_holder, herald_tables())
            postgres_tools.run("pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={partial}", conninfo)
            snapshot_holder.rollback()
        partial.rename(directory / file_name)
        backup.file_name = file_name
        backup.size_bytes = (directory / file_name).stat().st_size
        backup.sha256 = postgres_tools.sha256_of(directory / file_name)
        backup.table_counts = counts
        backup.status = Backup.Status.SUCCEEDED
    except (OSError, psycopg.Error, postgres_tools.ToolError) as exc:
        partial.unlink(missing_ok=True)
        backup.status = Backup.Status.FAILED
        backup.error = str(exc)
        logger.error("backup failed", extra={"backup_id": backup.pk, "error": str(exc)})
    backup.finished_at = timezone.now()
    backup.save()
    if backup.status == Backup.Status.SUCCEEDED:
        backups_prune(keep=settings.BACKUP_KEEP)
    return backup


def backups_prune(*, keep: int) -> int:
    """Delete all but the newest `keep` successful backups (files and records); returns how many."""
    old = list(Backup.objects.filter(status=Backup.Status.SUCCEEDED).order_by("-started_at")[keep:])
    for backup in old:
        (Path(settings.BACKUP_DIR) / backup.file_name).unlink(missing_ok=True)
        backup.delete()
    return len(old)


class DrillFailure(Exception):
    """The backup could not be restored, or what was restored is not what was backed up."""


def restore_drill_run(*, backup: Backup | None = None) -> RestoreDrill:
    """Restore a backup (the newest successful one by default) into a scratch database and check it."""
    backup = backup or Backup.objects.filter(status=Backup.Status.SUCCEEDED).first()
    drill = RestoreDrill.objects.create(backup=backup, started_at=timezone.now())
    try:
        if backup is None:
            raise DrillFailure("There is no successful backup to restore.")
        drill.checks = _restore_and_check(backup)
        drill.status = RestoreDrill.Status.PASSED
    except DrillFailure as exc:
        drill.status = RestoreDrill.Status.FAILED
        drill.error = str(exc)
        logger.error("restore drill failed", extra={"drill_id": drill.pk, "error": str(exc)})
    drill.finished_at = timezone.now()
    drill.save()
    return drill


def _restore_and_check(backup: Backup) -> dict:
    path = Path(settings.BACKUP_DIR) / backup.file_name
    if not path.exists():
        raise DrillFailure(f"The backup file {path} is missing.")
    if postgres_tools.sha256_of(path) != backup.sha256:
        raise DrillFailure(f"The backup file {path} is corrupted: its checksum does not match the one recorded.")
    scratch_directory = None
    scratch_server = None
    try:
        if settings.RESTORE_DRILL_DATABASE_URL:
            scratch = settings.RESTORE_DRILL_DATABASE_URL
            with psycopg.connect(scratch, autocommit=True) as conn:
                conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
                conn.execute("CREATE SCHEMA public")
        else:
            scratch_directory = service_tempdir("herald-restore-drill-")
            scratch_server = LocalPostgres(scratch_directory / "postgres").start(fast_and_unsafe=True)
            scratch = scratch_server.url
        try:
            postgres_tools.run(
                "pg_restore", "--exit-on-error", "--no-owner", "--no-privileges", f"--dbname={scratch}", str(path)
            )
        except postgres_tools.ToolError as exc:
            raise DrillFailure(f"The backup could not be restored: {exc}") from None
        return _compare(backup, scratch)
    finally:
        if scratch_server:
            stop_process(scratch_server.process)
        if scratch_directory:
            shutil.rmtree(scratch_directory, ignore_errors=True)


def _compare(backup: Backup, scratch: str) -> dict:
    """Row counts must equal the snapshot's exactly; sampled rows must match the live ones
    unless they changed after the backup began."""
    live_conninfo = postgres_tools.conninfo_from_django(connections["default"].settings_dict)
    checks, problems = {}, []
    with psycopg.connect(scratch) as restored, psycopg.connect(live_conninfo) as live:
        restored_counts = _count_rows(restored, list(backup.table_counts))
        for table, expected in backup.table_counts.items():
            restored_rows = restored_counts[table]
            sampled, differing = _sample(restored, live, table, backup.started_at)
            checks[table] = {"expected": expected, "restored": restored_rows, "sampled": sampled}
            if restored_rows != expected:
                problems.append(f"{table}: {restored_rows} rows restored, {expected} backed up")
            if differing:
                problems.append(f"{table}: rows {differing} differ from the live database")
    if problems:
        raise DrillFailure("The restored database does not match the backup: " + "; ".join(problems))
    return checks


def _columns(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
        [table],
    ).fetchall()
    return {name for (name,) in rows}


def _sample(restored: psycopg.Connection, live: psycopg.Connection, table: str, since: datetime):
    """Compare a few random rows with the live database. Only tables that stamp `updated_at`
    tell an unchanged row from one changed since the backup; the others are left to the
    exact row count."""
    columns = _columns(restored, table)
    if not {"id", "updated_at"} <= columns:
        return 0, []
    ids = [row[0] for row in restored.execute(sql.SQL("SELECT id FROM {}").format(sql.Identifier(table))).fetchall()]
    chosen = random.sample(ids, min(SAMPLE_ROWS_PER_TABLE, len(ids)))
    query = sql.SQL("SELECT id, to_jsonb(t) FROM {} AS t WHERE id = ANY(%s)").format(sql.Identifier(table))
    restored_rows = dict(restored.execute(query, [chosen]).fetchall())
    live_rows = dict(live.execute(query, [chosen]).fetchall())
    differing = []
    for row_id, restored_row in restored_rows.items():
        live_row = live_rows.get(row_id)
        if live_row is None or datetime.fromisoformat(live_row["updated_at"]) >= since:
            continue  # deleted or changed since the backup began: nothing to compare
        if live_row != restored_row:
            differing.append(row_id)
    return len(restored_rows), differing


def drill_probe_start(*, token: str, worker: str) -> None:
    """Count a start of the probe `token` by `worker` (a redelivered probe is counted again)."""
    from django.db.models import F

    from operations.models import DrillProbe

    DrillProbe.objects.get_or_create(token=token)
    DrillProbe.objects.filter(token=token).update(
        starts=F("starts") + 1, last_started_by=worker, updated_at=timezone.now()
    )


def drill_probe_complete(*, token: str, worker: str) -> bool:
    """Record the probe's completion; only the first one counts, so a probe run twice is recorded once."""
    from operations.models import DrillProbe

    now = timezone.now()
    return bool(
        DrillProbe.objects.filter(token=token, completed_at__isnull=True).update(
            completed_by=worker, completed_at=now, updated_at=now
        )
    )
