"""The JSON API of subscriber imports: start one from an uploaded CSV file, follow it, cancel it.

Mounted at /api/imports in config/urls.py. A read-only key may follow imports; starting or
cancelling one takes a write key. Another workspace's import is a 404, like a missing one.
"""

import json
from datetime import datetime

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from ninja import File, Form, Router, Schema, Status
from ninja.decorators import decorate_view
from ninja.errors import HttpError
from ninja.files import UploadedFile

from accounts.access import require_write
from subscribers.access import get_list_for_member
from subscribers.import_pipeline import ImportFileError
from subscribers.imports import (
    get_import_for_member,
    import_cancel,
    import_counts,
    import_progress,
    import_start,
    imports_for_workspace,
)
from subscribers.models import Import
from subscribers.views_imports import install_upload_limit, rejected_rows_download, too_large_message

router = Router(tags=["imports"])


class ImportOut(Schema):
    id: int
    status: str
    phase: str
    mode: str
    list_id: int | None
    file_name: str
    columns: list[str]
    mapping: dict
    percent: float
    counts: dict[str, int]
    error_message: str
    error_report_url: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ErrorOut(Schema):
    detail: str


def _out(request: HttpRequest, imp: Import) -> ImportOut:
    progress = import_progress(imp=imp)
    return ImportOut(
        id=imp.pk,
        status=imp.status,
        phase=imp.phase,
        mode=imp.mode,
        list_id=imp.mailing_list_id,
        file_name=imp.original_name,
        columns=imp.columns,
        mapping=imp.mapping,
        percent=progress["percent"],
        counts=import_counts(imp),
        error_message=imp.error_message,
        error_report_url=request.build_absolute_uri(f"/api/imports/{imp.pk}/errors")
        if progress["has_error_report"]
        else None,
        created_at=imp.created_at,
        started_at=imp.started_at,
        finished_at=imp.finished_at,
    )


def limit_upload(view):
    """Install the upload size limit before the body is parsed (413 when already over it)."""

    def wrapper(request, *args, **kwargs):
        handler = install_upload_limit(request)
        if handler is None:
            return JsonResponse({"detail": too_large_message()}, status=413)
        request.import_upload_handler = handler
        return view(request, *args, **kwargs)

    return wrapper


@router.post(
    "",
    response={202: ImportOut, 200: ImportOut, 413: ErrorOut, 422: ErrorOut},
    summary="Start an import from an uploaded CSV file",
)
@decorate_view(limit_upload)
def import_create(
    request,
    file: File[UploadedFile] = None,
    mode: Form[str] = Import.Mode.ADD,
    list_id: Form[int | None] = None,
    mapping: Form[str | None] = None,
    has_header: Form[bool] = True,
):
    """Multipart upload of `file` with `mode` (add, upsert, unsubscribe, blocklist), an optional
    `list_id` and `mapping`, a JSON object naming columns by header or 0-based position:
    `{"email": "Email", "name": "Name", "attributes": {"city": "City"}}` (guessed when left out).

    Answers 202 with the queued import; with an `Idempotency-Key` header a retry answers 200
    with the import the first request started.
    """
    member = request.auth
    require_write(member)
    handler = getattr(request, "import_upload_handler", None)
    if handler is not None and handler.exceeded:
        return Status(413, {"detail": too_large_message()})
    if file is None:
        raise HttpError(422, "Attach the CSV file as the multipart field `file`.")
    mailing_list = get_list_for_member(member, list_id) if list_id is not None else None
    spec = None
    if mapping:
        try:
            spec = json.loads(mapping)
        except ValueError:
            raise HttpError(422, "`mapping` is not valid JSON.") from None
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255:
        raise HttpError(400, "The Idempotency-Key header may be at most 255 characters.")
    try:
        imp, created = _start(member, file, mode, mailing_list, spec, has_header, key)
    except (ValidationError, ImportFileError) as exc:
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        raise HttpError(422, message) from None
    return Status(202 if created else 200, _out(request, imp))


def _start(member, file, mode, mailing_list, spec, has_header, key):
    return import_start(
        workspace_id=member.workspace_id,
        actor=None,
        chunks=file.chunks(),
        original_name=file.name or "import.csv",
        mode=mode,
        mailing_list=mailing_list,
        mapping_spec=spec,
        has_header=has_header,
        idempotency_key=key,
    )


@router.get("", response=list[ImportOut], summary="The workspace's imports, newest first")
def import_index(request, limit: int = 50, offset: int = 0):
    limit = max(1, min(limit, 200))
    imports = imports_for_workspace(workspace_id=request.auth.workspace_id)[max(0, offset) : max(0, offset) + limit]
    return [_out(request, imp) for imp in imports]


@router.get("/{import_id}", response=ImportOut, summary="An import's status, progress and counts")
def import_read(request, import_id: int):
    return _out(request, get_import_for_member(request.auth, import_id))


@router.post("/{import_id}/cancel", response=ImportOut, summary="Cancel an import (rows already written stay)")
def import_cancel_endpoint(request, import_id: int):
    imp = get_import_for_member(request.auth, import_id, write=True)
    if imp.is_finished:
        raise HttpError(409, f"This import has already {imp.get_status_display().lower()}.")
    import_cancel(imp=imp)
    return _out(request, imp)


@router.get("/{import_id}/errors", summary="The rejected rows, with the reason for each (CSV)")
def import_errors(request, import_id: int):
    return rejected_rows_download(get_import_for_member(request.auth, import_id))
