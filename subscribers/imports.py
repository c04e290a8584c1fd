"""CSV imports of subscribers: the services that start, run, resume and cancel them, and their reads.

An import runs in two phases, each committed chunk by chunk with its checkpoint in the same
transaction, so a worker that dies mid-file is resumed (by the task's redelivery or by
`imports_resume_stalled`) from its last commit without doubling anything:

1. staging: the stored UTF-8 file is cut into byte ranges that a pool of processes validates in
   parallel (subscribers/import_pipeline.py); each range's valid rows are `COPY`ed into the
   import's own staging table, its rejected rows appended to the error report, and the byte
   offset saved.
2. writing: the staging rows are split into buckets by a hash of the address (so every copy of
   an address is in one bucket), and each bucket is deduplicated and upserted into subscribers
   and list memberships by one set-based statement, two buckets at a time on two connections.

Addresses suppressed (address, domain or erasure hash) or whose subscriber is unsubscribed,
bounced, complained or blocklisted are never (re)activated; blocklisting never stores an erased
address again. Running the same file twice changes nothing the second time.
"""

# The SQL below is assembled from constants, column positions and integer ids only; every value
# is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.encoding import force_bytes

from accounts.access import get_for_member
from subscribers import import_pipeline as pipeline
from subscribers.models import Import, ListMembership, MailingList, Suppression

logger = logging.getLogger(__name__)

# A running import sends a heartbeat with every checkpoint (every second or so); one silent
# for this long has lost its worker and is resumed by the sweeper.
LEASE = timedelta(minutes=2)
# Uploads never mapped are removed after this long.
ABANDONED_UPLOAD_AGE = timedelta(days=1)
# Share of the progress bar for the staging phase (it takes about a third of the time).
STAGING_SHARE = 0.35


class ImportLost(Exception):
    """This worker no longer owns the import (cancelled, or claimed by another worker)."""


# --- Access and reads -------------------------------------------------------------------


def get_import_for_member(member, import_id: object, *, write: bool = False) -> Import:
    """The import with this id in the member's workspace (404 elsewhere; 403 on write for viewers)."""
    return get_for_member(
        Import.objects.select_related("mailing_list", "created_by"), member=member, pk=import_id, write=write
    )


def imports_for_workspace(*, workspace_id: int) -> QuerySet[Import]:
    return Import.objects.filter(workspace_id=workspace_id).select_related("mailing_list", "created_by")


def import_counts(imp: Import) -> dict[str, int]:
    return {
        "total": imp.total_rows,
        "inserted": imp.inserted,
        "updated": imp.updated,
        "unchanged": imp.unchanged,
        "rejected": imp.rejected,
        "duplicates": imp.duplicates,
        "suppressed_skipped": imp.suppressed_skipped,
    }


def import_progress(*, imp: Import) -> dict:
    """Where the import stands: share done, rows read and written, rate and time left."""
    now = timezone.now()
    if imp.status == Import.Status.COMPLETED:
        fraction = 1.0
    elif imp.status in (Import.Status.UPLOADED, Import.Status.QUEUED) or not imp.started_at:
        fraction = 0.0
    elif imp.phase == Import.Phase.STAGING:
        start = imp.header_bytes if imp.has_header else 0
        stored = _stored_size(imp)
        fraction = STAGING_SHARE * max(0, imp.byte_offset - start) / max(1, stored - start)
    else:
        fraction = STAGING_SHARE + (1 - STAGING_SHARE) * len(imp.buckets_done) / max(1, imp.bucket_count)
    end = imp.finished_at or now
    elapsed = (end - imp.started_at).total_seconds() if imp.started_at else 0.0
    rate = imp.total_rows / elapsed if elapsed > 0 and imp.total_rows else 0.0
    seconds_left = None
    if imp.status == Import.Status.RUNNING and 0 < fraction < 1 and elapsed > 0:
        seconds_left = round(elapsed * (1 - fraction) / fraction)
    return {
        "id": imp.pk,
        "status": imp.status,
        "status_display": imp.get_status_display(),
        "phase": imp.phase,
        "phase_display": imp.get_phase_display(),
        "finished": imp.is_finished,
        "percent": round(100 * fraction, 1),
        "rows_read": imp.total_rows,
        "rows_written": imp.rows_written,
        "rows_estimate": max(0, imp.lines_estimate - (1 if imp.has_header else 0)),
        "rows_per_second": round(rate),
        "seconds_elapsed": round(elapsed, 1),
        "seconds_left": seconds_left,
        "counts": import_counts(imp),
        "error_message": imp.error_message,
        "has_error_report": bool(imp.error_report) and imp.rejected > 0,
    }


def _stored_size(imp: Import) -> int:
    try:
        return os.path.getsize(imp.file.path)
    except (OSError, ValueError):
        return imp.size_bytes


def import_error_report_path(imp: Import) -> Path | None:
    """The error report's file, once rows have been rejected."""
    if not imp.error_report or imp.rejected == 0:
        return None
    path = Path(imp.error_report.path)
    return path if path.exists() else None


# --- Starting an import -------------------------------------------------------------------


def _max_upload_bytes() -> int:
    return settings.IMPORT_MAX_UPLOAD_MB * 1024 * 1024


def _check_target(*, workspace_id: int, mode: str, mailing_list: MailingList | None) -> MailingList | None:
    if mode not in Import.Mode.values:
        raise ValidationError(f"Mode must be one of {', '.join(Import.Mode.values)}.")
    if mailing_list is not None and mailing_list.workspace_id != workspace_id:
        raise ValidationError("That list is not in this workspace.")
    # Blocklisting is workspace-wide: a list would mean nothing.
    return None if mode == Import.Mode.BLOCKLIST else mailing_list


def import_upload(
    *,
    workspace_id: int,
    actor,
    chunks,
    original_name: str,
    mode: str = Import.Mode.ADD,
    mailing_list: MailingList | None = None,
    idempotency_key: str = "",
) -> Import:
    """Store an uploaded CSV file (checked and re-encoded to UTF-8) and read its first rows.

    `chunks` yields the file's bytes in order (an UploadedFile's `.chunks()`). The import waits
    for its column mapping (`import_configure`). A file that cannot be imported raises
    ValidationError with the reason, and leaves nothing behind.
    """
    mailing_list = _check_target(workspace_id=workspace_id, mode=mode, mailing_list=mailing_list)
    name = f"imports/{workspace_id}/{uuid.uuid4().hex}.csv"
    path = Path(default_storage.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb") as destination:
            facts = pipeline.store_utf8(chunks, destination, max_bytes=_max_upload_bytes())
        pipeline.inspect_stored(str(path), facts)
        mapping = pipeline.guess_mapping(facts.columns, facts.preview)
        if mapping["email"] is None:
            raise pipeline.ImportFileError(
                "No column of this file holds email addresses (Herald looked at the column names and the "
                "first rows). Add a column of addresses, or check that this is the right file."
            )
        if not facts.preview and not pipeline.looks_like_email(facts.columns[mapping["email"]]):
            raise pipeline.ImportFileError("The file has a header row but no rows of subscribers below it.")
        with transaction.atomic():
            imp = Import.objects.create(
                workspace_id=workspace_id,
                mailing_list=mailing_list,
                created_by=actor,
                mode=mode,
                idempotency_key=idempotency_key,
                file=name,
                original_name=(original_name or "import.csv")[:255],
                size_bytes=facts.size_bytes,
                encoding=facts.encoding,
                delimiter=facts.delimiter,
                lines_estimate=facts.lines + (0 if _ends_with_newline(path) else 1),
                header_bytes=facts.header_bytes,
                columns=facts.columns,
                preview=facts.preview,
                mapping=mapping,
            )
    except pipeline.ImportFileError as exc:
        path.unlink(missing_ok=True)
        raise ValidationError(str(exc)) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return imp


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as stored:
        stored.seek(0, os.SEEK_END)
        if stored.tell() == 0:
            return True
        stored.seek(-1, os.SEEK_END)
        return stored.read(1) == b"\n"


def import_configure(
    *,
    imp: Import,
    mapping: dict,
    has_header: bool = True,
    mode: str | None = None,
    mailing_list: MailingList | None | bool = False,
) -> Import:
    """Set the column mapping (and optionally the mode and list) and queue the import.

    `mailing_list=False` keeps the list chosen at upload. Only an import still waiting for its
    mapping can be configured; ValidationError says what is wrong.
    """
    mode = mode or imp.mode
    target = imp.mailing_list if mailing_list is False else mailing_list
    target = _check_target(workspace_id=imp.workspace_id, mode=mode, mailing_list=target)
    try:
        checked = pipeline.check_mapping(mapping, len(imp.columns))
    except pipeline.ImportFileError as exc:
        raise ValidationError(str(exc)) from None
    if has_header and not imp.preview:
        raise ValidationError("The file has only one row: with it as the header there is nothing to import.")
    now = timezone.now()
    with transaction.atomic():
        changed = Import.objects.filter(pk=imp.pk, status=Import.Status.UPLOADED).update(
            mapping=checked,
            has_header=has_header,
            mode=mode,
            mailing_list=target,
            byte_offset=imp.header_bytes if has_header else 0,
            status=Import.Status.QUEUED,
            queued_at=now,
            updated_at=now,
        )
        if not changed:
            raise ValidationError("This import has already been started.")
        transaction.on_commit(lambda: _enqueue(imp.pk))
    imp.refresh_from_db()
    return imp


def _enqueue(import_id: int) -> None:
    from subscribers.tasks import import_run

    import_run.delay(import_id)


def import_start(
    *,
    workspace_id: int,
    actor,
    chunks,
    original_name: str,
    mode: str = Import.Mode.ADD,
    mailing_list: MailingList | None = None,
    mapping_spec: object | None = None,
    has_header: bool = True,
    idempotency_key: str = "",
) -> tuple[Import, bool]:
    """Upload and queue in one step (the API): (import, created).

    `mapping_spec` names columns by header or position (see import_pipeline.mapping_from_spec);
    without it the guessed mapping is used. A retry with the same `idempotency_key` returns the
    import the first attempt started, and stores nothing new.
    """
    if idempotency_key:
        existing = Import.objects.filter(workspace_id=workspace_id, idempotency_key=idempotency_key).first()
        if existing:
            return existing, False
    try:
        imp = import_upload(
            workspace_id=workspace_id,
            actor=actor,
            chunks=chunks,
            original_name=original_name,
            mode=mode,
            mailing_list=mailing_list,
            idempotency_key=idempotency_key,
        )
    except IntegrityError:
        # A retry raced the first request with the same key: answer with the first one's import.
        existing = Import.objects.filter(workspace_id=workspace_id, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing, False
    try:
        if mapping_spec is None:
            mapping = pipeline.guess_mapping(imp.columns, imp.preview, has_header=has_header)
        else:
            try:
                mapping = pipeline.mapping_from_spec(mapping_spec, imp.columns)
            except pipeline.ImportFileError as exc:
                raise ValidationError(str(exc)) from None
        import_configure(imp=imp, mapping=mapping, has_header=has_header)
    except BaseException:
        import_discard(imp=imp)
        raise
    imp.refresh_from_db()
    return imp, True


def import_discard(*, imp: Import) -> None:
    """Remove an import that was never started, with its file."""
    if Import.objects.filter(pk=imp.pk, status=Import.Status.UPLOADED).delete()[0]:
        _delete_files(imp)


def import_cancel(*, imp: Import) -> bool:
    """Stop an import. Rows already written stay; the worker stops at its next checkpoint."""
    now = timezone.now()
    with transaction.atomic():
        # Locked, so that a worker claiming it meanwhile is seen: a running import is cleaned up
        # by its worker, which must not find its file gone under it.
        current = Import.objects.select_for_update().filter(pk=imp.pk).values_list("status", flat=True).first()
        cancellable = current in (Import.Status.UPLOADED, Import.Status.QUEUED, Import.Status.RUNNING)
        if cancellable:
            Import.objects.filter(pk=imp.pk).update(status=Import.Status.CANCELLED, finished_at=now, updated_at=now)
    if cancellable and current != Import.Status.RUNNING:
        _finish_cleanup(imp)
    imp.refresh_from_db()
    return cancellable


def _finish_cleanup(imp: Import) -> None:
    """An import that has ended needs neither its staging table nor the uploaded file (personal data)."""
    _drop_staging(imp.pk)
    if imp.file:
        with contextlib.suppress(OSError, ValueError):
            Path(imp.file.path).unlink(missing_ok=True)


def _delete_files(imp: Import) -> None:
    for field in (imp.file, imp.error_report):
        if field:
            with contextlib.suppress(OSError, ValueError):
                Path(field.path).unlink(missing_ok=True)


# --- Running an import (the task's body) ------------------------------------------------


def import_process(*, import_id: int) -> None:
    """Claim the import and run (or resume) it to the end. A second delivery does nothing."""
    imp = _claim(import_id)
    if imp is None:
        return
    try:
        if imp.phase == Import.Phase.STAGING:
            _stage(imp)
        if imp.phase == Import.Phase.WRITING:
            _write(imp)
        _complete(imp)
    except ImportLost:
        if Import.objects.filter(pk=imp.pk, status=Import.Status.CANCELLED).exists():
            _finish_cleanup(imp)
    except (OperationalError, InterfaceError, psycopg.OperationalError):
        # The database went away: the import stays claimed, and is resumed when its lease expires.
        logger.warning("Import %s paused: the database could not be reached.", imp.pk, exc_info=True)
        raise
    except Exception:
        logger.exception("Import %s failed.", imp.pk)
        _fail(
            imp,
            "The import stopped because of an internal error. Rows written before it stopped were kept; "
            "running the same file again is safe.",
        )


def _claim(import_id: int) -> Import | None:
    now = timezone.now()
    claimed = Import.objects.filter(
        Q(status=Import.Status.QUEUED) | Q(status=Import.Status.RUNNING, heartbeat_at__lt=now - LEASE),
        pk=import_id,
    ).update(
        status=Import.Status.RUNNING,
        attempt=F("attempt") + 1,
        heartbeat_at=now,
        started_at=Coalesce("started_at", now),
        updated_at=now,
    )
    if not claimed:
        return None
    return Import.objects.select_related("mailing_list", "created_by").get(pk=import_id)


def _checkpoint(imp: Import, **changes) -> None:
    """Save progress, in the caller's transaction, if this worker still owns the import."""
    now = timezone.now()
    owned = Import.objects.filter(pk=imp.pk, attempt=imp.attempt, status=Import.Status.RUNNING).update(
        heartbeat_at=now, updated_at=now, **changes
    )
    if not owned:
        raise ImportLost


def _workers() -> int:
    return settings.IMPORT_WORKERS or os.cpu_count() or 1


def _staging_table(import_id: int) -> str:
    return f"subscribers_import_stage_{int(import_id)}"


def _drop_staging(import_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_staging_table(import_id)}")


def _digest_key(workspace_id: int) -> bytes | None:
    """The key of `erasure_digest`'s HMAC, when the workspace has erased addresses to look for."""
    if not Suppression.objects.filter(workspace_id=workspace_id, kind=Suppression.Kind.HASH).exists():
        return None
    # Derived as django.utils.crypto.salted_hmac does, so digests match subscribers.services.erasure_digest.
    return hashlib.sha256(force_bytes("herald.subscribers.erasure") + force_bytes(settings.SECRET_KEY)).digest()


def _stage(imp: Import) -> None:
    started = time.monotonic()
    attribute_count = len(imp.mapping["attributes"])
    staging = _staging_table(imp.pk)
    attribute_columns = ", ".join(f"a{i} text" for i in range(max(1, attribute_count)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {staging} "
            f"(chunk integer, line integer, bucket integer, email text, name text, digest text, {attribute_columns})"
        )
    if not imp.bucket_count:
        buckets = max(1, math.ceil(imp.lines_estimate / settings.IMPORT_BUCKET_ROWS))
        with transaction.atomic():
            _checkpoint(imp, bucket_count=buckets)
        imp.bucket_count = buckets
    report = _open_error_report(imp)
    try:
        for result in _validated_chunks(imp):
            _stage_chunk(imp, staging, result, report)
    finally:
        report.close()
    with connection.cursor() as cursor:
        # Planner statistics for the per-bucket statements that read it.
        cursor.execute(f"ANALYZE {staging}")
    with transaction.atomic():
        timings = {**imp.timings, "staging": round(imp.timings.get("staging", 0) + time.monotonic() - started, 3)}
        _checkpoint(imp, phase=Import.Phase.WRITING, timings=timings)
    imp.phase, imp.timings = Import.Phase.WRITING, timings


def _open_error_report(imp: Import):
    if not imp.error_report:
        name = f"{Path(imp.file.name).with_suffix('')}-errors.csv"
        with transaction.atomic():
            _checkpoint(imp, error_report=name, error_report_bytes=0)
        imp.error_report.name, imp.error_report_bytes = name, 0
    path = Path(imp.error_report.path)
    report = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 (closed by the caller)
    # Rows written after the last checkpoint were not committed: they are written again.
    report.truncate(imp.error_report_bytes)
    report.seek(imp.error_report_bytes)
    if imp.error_report_bytes == 0:
        header = ["row", "reason", *(imp.columns if imp.has_header else [])]
        report.write(_csv_line(pipeline.neutralise_row(header)))
    return report


def _csv_line(cells: list[str]) -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")


def _validated_chunks(imp: Import) -> Iterator[pipeline.ChunkResult]:
    """The file's remaining ranges, validated by processes of their own, in file order.

    At most two ranges per process are in flight, so memory stays bounded however large the file.
    """
    mapping = imp.mapping
    digest_key = _digest_key(imp.workspace_id)

    def jobs() -> Iterator[pipeline.ChunkJob]:
        ranges = pipeline.chunk_ranges(imp.file.path, imp.byte_offset, settings.IMPORT_CHUNK_BYTES)
        for index, (start, end) in enumerate(ranges, start=imp.chunks_staged):
            yield pipeline.ChunkJob(
                path=imp.file.path,
                start=start,
                end=end,
                index=index,
                delimiter=imp.delimiter,
                email_column=mapping["email"],
                name_column=mapping["name"],
                attribute_columns=tuple(column for _, column in mapping["attributes"]),
                buckets=imp.bucket_count,
                workspace_id=imp.workspace_id,
                digest_key=digest_key,
            )

    workers = _workers()
    if workers <= 1:
        yield from map(pipeline.process_chunk, jobs())
        return
    with pipeline.ValidatorProcesses(workers, cwd=str(settings.BASE_DIR)) as validators:
        yield from validators.map(jobs())


def _stage_chunk(imp: Import, staging: str, result: pipeline.ChunkResult, report) -> None:
    first_row = imp.records_read + (2 if imp.has_header else 1)
    lines = [
        _csv_line(pipeline.neutralise_row([first_row + record, reason, *cells]))
        for record, reason, cells in result.rejected
    ]
    report.write(b"".join(lines))
    report.flush()
    os.fsync(report.fileno())
    report_bytes = report.tell()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # The checkpoint commits with the rows: a commit lost in a crash is simply redone.
            cursor.execute("SET LOCAL synchronous_commit = off")
            with cursor.copy(f"COPY {staging} FROM STDIN (FORMAT csv)") as copy:
                copy.write(result.staged)
        _checkpoint(
            imp,
            byte_offset=result.end,
            chunks_staged=result.index + 1,
            records_read=F("records_read") + result.records,
            total_rows=F("total_rows") + result.data_rows,
            rejected=F("rejected") + len(result.rejected),
            error_report_bytes=report_bytes,
        )
    imp.byte_offset, imp.chunks_staged = result.end, result.index + 1
    imp.records_read += result.records
    imp.total_rows += result.data_rows
    imp.rejected += len(result.rejected)
    imp.error_report_bytes = report_bytes


def _write(imp: Import) -> None:
    started = time.monotonic()
    remaining = [bucket for bucket in range(imp.bucket_count) if bucket not in set(imp.buckets_done)]
    statement = _bucket_statement(imp)
    parameters = _bucket_parameters(imp)
    lost = threading.Event()

    def run_buckets(buckets: list[int]) -> None:
        with _own_connection() as conn:
            for bucket in buckets:
                if lost.is_set():
                    return
                try:
                    _write_bucket(conn, imp, statement, {**parameters, "bucket": bucket})
                except ImportLost:
                    lost.set()
                    raise

    threads = max(1, min(_workers(), len(remaining)))
    shares = [remaining[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(max_workers=threads) as executor:
        for future in [executor.submit(run_buckets, share) for share in shares if share]:
            future.result()
    with transaction.atomic():
        timings = {**imp.timings, "writing": round(imp.timings.get("writing", 0) + time.monotonic() - started, 3)}
        _checkpoint(imp, timings=timings)
    imp.timings = timings


@contextlib.contextmanager
def _own_connection():
    """A psycopg connection of its own for a writing thread (Django's belongs to the main one)."""
    params = connection.get_connection_params()
    for key in ("context", "cursor_factory", "server_side_binding", "isolation_level", "assume_role", "pool"):
        params.pop(key, None)
    conn = psycopg.connect(**params, autocommit=False)
    try:
        yield conn
    finally:
        conn.close()


def _write_bucket(conn, imp: Import, statement: str, parameters: dict) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        # Constraint checks run within the statement, while the other thread works, rather
        # than all at commit; the checkpoint commits with the rows (see _stage_chunk).
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Subscribers are looked up by their unique index. Statistics of a table that grows by
        # 100,000 rows a bucket lag behind, and a nested loop over a sequential scan, chosen
        # when the table looked empty, turns each bucket into minutes.
        cursor.execute("SET LOCAL enable_seqscan = off")
        # Compiling this statement costs more than it saves (a sixth of a bucket's time), and
        # the deduplicating sort of a bucket fits in memory with a little more than the default.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(statement, parameters)
        rows, distinct, skipped, inserted, updated = cursor.fetchone()
        cursor.execute(
            """
            UPDATE subscribers_import SET
                inserted = inserted + %(inserted)s, updated = updated + %(updated)s,
                unchanged = unchanged + %(unchanged)s, duplicates = duplicates + %(duplicates)s,
                suppressed_skipped = suppressed_skipped + %(skipped)s, rows_written = rows_written + %(distinct)s,
                buckets_done = buckets_done || to_jsonb(%(bucket)s::integer), heartbeat_at = now(), updated_at = now()
            WHERE id = %(id)s AND attempt = %(attempt)s AND status = 'running'
            """,
            {
                "inserted": inserted,
                "updated": updated,
                "unchanged": distinct - skipped - inserted - updated,
                "duplicates": rows - distinct,
                "skipped": skipped,
                "distinct": distinct,
                "bucket": parameters["bucket"],
                "id": imp.pk,
                "attempt": imp.attempt,
            },
        )
        if cursor.rowcount != 1:
            raise ImportLost


def _bucket_parameters(imp: Import) -> dict:
    now = timezone.now()
    single = imp.mailing_list is not None and imp.mailing_list.opt_in == MailingList.OptIn.SINGLE
    actor = imp.created_by.email if imp.created_by else "the API"
    return {
        "ws": imp.workspace_id,
        "list": imp.mailing_list_id,
        "now": now,
        "membership_status": ListMembership.Status.CONFIRMED if single else ListMembership.Status.UNCONFIRMED,
        "confirmed_at": now if single else None,
        "consent_text": f"Imported from {imp.original_name} (import {imp.pk}) by {actor}.",
        "note": f"Blocklisted by import {imp.pk} ({imp.original_name})."[:500],
        "actor": imp.created_by_id,
        **{f"key{i}": key for i, (key, _) in enumerate(imp.mapping["attributes"])},
    }


def _bucket_statement(imp: Import) -> str:
    """One statement that deduplicates a bucket, writes it and returns its counts.

    It returns (rows in the bucket, distinct addresses, skipped as suppressed or not active,
    inserted, updated); the rest of the distinct addresses were left unchanged.
    """
    staging = _staging_table(imp.pk)
    attributes = imp.mapping["attributes"]
    if attributes:
        pairs = ", ".join(f"%(key{i})s::text, NULLIF(a{i}, '')" for i in range(len(attributes)))
        attributes_json = f"jsonb_strip_nulls(jsonb_build_object({pairs}))"
        attribute_names = ", ".join(f"a{i}" for i in range(len(attributes)))
    else:
        attributes_json, attribute_names = "'{}'::jsonb", "a0"

    def suppressed(kind: str, value: str) -> str:
        return (
            "EXISTS (SELECT 1 FROM subscribers_suppression p WHERE p.workspace_id = %(ws)s "
            f"AND p.kind = '{kind}' AND p.value = {value})"
        )

    erased = f"(src.digest <> '' AND {suppressed('hash', 'src.digest')})"
    if imp.mode in (Import.Mode.ADD, Import.Mode.UPSERT):
        address = suppressed("address", "src.email")
        domain = suppressed("domain", "split_part(src.email, '@', 2)")
        suppressed_expression = f"({address} OR {domain} OR {erased})"
    elif imp.mode == Import.Mode.BLOCKLIST:
        # An erased person is already suppressed by hash; storing the address again would undo the erasure.
        suppressed_expression = erased
    else:
        suppressed_expression = "false"

    common = f"""
        WITH bucket AS (
            SELECT lower(email) AS email, chunk, line, name, digest, {attribute_names}
            FROM {staging} WHERE bucket = %(bucket)s
        ),
        src AS (
            SELECT DISTINCT ON (email) email, left(coalesce(name, ''), 200) AS name,
                   {attributes_json} AS attributes, coalesce(digest, '') AS digest
            FROM bucket ORDER BY email, chunk, line
        ),
        flagged AS (
            SELECT src.*, s.id AS subscriber_id, s.status AS subscriber_status, {suppressed_expression} AS suppressed
            FROM src LEFT JOIN subscribers_subscriber s ON s.workspace_id = %(ws)s AND s.email = src.email
        )"""
    membership_columns = (
        "workspace_id, mailing_list_id, subscriber_id, status, subscribed_at, confirmed_at, unsubscribed_at, "
        "created_at, updated_at"
    )
    membership_values = (
        "%(ws)s, %(list)s, {id}, %(membership_status)s, %(now)s, %(confirmed_at)s, NULL, %(now)s, %(now)s"
    )
    with_list = imp.mailing_list_id is not None

    if imp.mode in (Import.Mode.ADD, Import.Mode.UPSERT):
        parts = [
            """
        ins AS (
            INSERT INTO subscribers_subscriber (workspace_id, email, name, attributes, status, source, consent_at,
                consent_method, consent_ip, consent_text, status_changed_at, last_activity_at, created_at, updated_at)
            SELECT %(ws)s, email, name, attributes, 'active', 'import', %(now)s, 'import', NULL, %(consent_text)s,
                NULL, NULL, %(now)s, %(now)s
            FROM flagged WHERE subscriber_id IS NULL AND NOT suppressed
            ON CONFLICT (workspace_id, email) DO NOTHING
            RETURNING id
        )"""
        ]
        changed = []
        if imp.mode == Import.Mode.UPSERT:
            new_name = "CASE WHEN f.name <> '' THEN f.name ELSE s.name END"
            parts.append(f"""
        upd AS (
            UPDATE subscribers_subscriber s SET name = {new_name}, attributes = s.attributes || f.attributes,
                updated_at = %(now)s
            FROM flagged f
            WHERE s.id = f.subscriber_id AND NOT f.suppressed AND f.subscriber_status = 'active'
              AND (s.name IS DISTINCT FROM {new_name} OR s.attributes IS DISTINCT FROM s.attributes || f.attributes)
            RETURNING s.id
        )""")
            changed.append("SELECT id FROM upd")
        if with_list:
            parts.append(f"""
        mem_new AS (
            -- Subscribers created by this statement cannot be on the list yet: no conflict to handle.
            INSERT INTO subscribers_listmembership ({membership_columns})
            SELECT {membership_values.format(id="id")} FROM ins
            RETURNING subscriber_id
        ),
        mem_old AS (
            INSERT INTO subscribers_listmembership ({membership_columns})
            SELECT {membership_values.format(id="subscriber_id")} FROM flagged
            WHERE subscriber_id IS NOT NULL AND NOT suppressed AND subscriber_status = 'active'
            ON CONFLICT (mailing_list_id, subscriber_id) DO NOTHING
            RETURNING subscriber_id
        )""")
            changed.append("SELECT subscriber_id FROM mem_old")
        skipped = "SELECT count(*) FROM flagged WHERE suppressed OR subscriber_status <> 'active'"
        inserted = "SELECT count(*) FROM ins"
        updated = f"SELECT count(*) FROM ({' UNION '.join(changed)}) changed" if changed else "SELECT 0"
        # mem_new runs although nothing reads it: Postgres runs every data-modifying CTE once.
    elif imp.mode == Import.Mode.UNSUBSCRIBE:
        scope = "m.mailing_list_id = %(list)s" if with_list else "m.workspace_id = %(ws)s"
        parts = [
            f"""
        mem AS (
            UPDATE subscribers_listmembership m SET status = 'unsubscribed', unsubscribed_at = %(now)s,
                updated_at = %(now)s
            FROM flagged f
            WHERE m.subscriber_id = f.subscriber_id AND {scope} AND m.status <> 'unsubscribed'
            RETURNING m.subscriber_id
        )"""
        ]
        changed = ["SELECT subscriber_id FROM mem"]
        if not with_list:
            parts.append("""
        sub AS (
            UPDATE subscribers_subscriber s SET status = 'unsubscribed', status_changed_at = %(now)s,
                updated_at = %(now)s
            FROM flagged f WHERE s.id = f.subscriber_id AND s.status = 'active'
            RETURNING s.id
        )""")
            changed.append("SELECT id FROM sub")
        skipped, inserted = "SELECT 0", "SELECT 0"
        updated = f"SELECT count(*) FROM ({' UNION '.join(changed)}) changed"
    else:
        parts = [
            """
        sub AS (
            UPDATE subscribers_subscriber s SET status = 'blocklisted', status_changed_at = %(now)s,
                updated_at = %(now)s
            FROM flagged f WHERE s.id = f.subscriber_id AND NOT f.suppressed AND s.status <> 'blocklisted'
            RETURNING s.id
        ),
        sup AS (
            INSERT INTO subscribers_suppression (workspace_id, kind, value, reason, note, created_at, created_by_id)
            SELECT %(ws)s, 'address', email, 'blocklist', %(note)s, %(now)s, %(actor)s
            FROM flagged WHERE NOT suppressed
            ON CONFLICT (workspace_id, kind, value) DO NOTHING
            RETURNING value
        )"""
        ]
        skipped = "SELECT count(*) FROM flagged WHERE suppressed"
        # A new suppression for an address with no subscriber counts as inserted; blocklisting
        # an existing subscriber as updated.
        inserted = "SELECT count(*) FROM sup JOIN flagged f ON f.email = sup.value WHERE f.subscriber_id IS NULL"
        updated = "SELECT count(*) FROM sub"
    return (
        common
        + ","
        + ",".join(parts)
        + f"""
        SELECT (SELECT count(*) FROM bucket), (SELECT count(*) FROM src), ({skipped}), ({inserted}), ({updated})"""
    )


def _complete(imp: Import) -> None:
    now = timezone.now()
    with transaction.atomic():
        _checkpoint(imp, status=Import.Status.COMPLETED, phase=Import.Phase.DONE, finished_at=now)
    _finish_cleanup(imp)
    logger.info("Import %s completed.", imp.pk, extra={"import_id": imp.pk, "timings": imp.timings})


def _fail(imp: Import, message: str) -> None:
    with contextlib.suppress(DatabaseError):
        Import.objects.filter(pk=imp.pk, attempt=imp.attempt, status=Import.Status.RUNNING).update(
            status=Import.Status.FAILED, error_message=message, finished_at=timezone.now(), updated_at=timezone.now()
        )
        _finish_cleanup(imp)


# --- The sweeper ------------------------------------------------------------------------


def imports_resume_stalled(*, stale_after: timedelta = LEASE) -> list[int]:
    """Queue again the running imports whose worker went silent; remove abandoned uploads.

    Returns the ids queued again. A stalled import goes back to `queued`, so exactly one
    worker claims it and resumes from its last checkpoint.
    """
    now = timezone.now()
    stalled = list(
        Import.objects.filter(status=Import.Status.RUNNING, heartbeat_at__lt=now - stale_after).values_list(
            "pk", flat=True
        )
    )
    resumed = []
    for import_id in stalled:
        with transaction.atomic():
            if Import.objects.filter(
                pk=import_id, status=Import.Status.RUNNING, heartbeat_at__lt=now - stale_after
            ).update(status=Import.Status.QUEUED, updated_at=now):
                transaction.on_commit(lambda import_id=import_id: _enqueue(import_id))
                resumed.append(import_id)
    # A queued import whose message was lost (broker restarted) is queued again too.
    for import_id in Import.objects.filter(
        status=Import.Status.QUEUED, queued_at__lt=now - stale_after, updated_at__lt=now - stale_after
    ).values_list("pk", flat=True):
        Import.objects.filter(pk=import_id).update(updated_at=now)
        _enqueue(import_id)
        resumed.append(import_id)
    for abandoned in Import.objects.filter(status=Import.Status.UPLOADED, created_at__lt=now - ABANDONED_UPLOAD_AGE):
        import_discard(imp=abandoned)
    return resumed
