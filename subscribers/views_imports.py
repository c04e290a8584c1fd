"""Pages of subscriber imports: the list, the upload, the column mapping, live progress, cancel.

Uploads are counted as they arrive and refused past IMPORT_MAX_UPLOAD_MB (the rest of the
request is read and dropped, nothing is stored). The progress page polls a small JSON view.
"""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import require_write
from accounts.decorators import member_required
from subscribers.forms_imports import ImportMappingForm, ImportUploadForm
from subscribers.import_pipeline import display_encoding
from subscribers.imports import (
    get_import_for_member,
    import_cancel,
    import_configure,
    import_discard,
    import_error_report_path,
    import_progress,
    import_upload,
    imports_for_workspace,
)
from subscribers.models import Import

PAGE_SIZE = 25
# Room for the form's other fields and the multipart framing around the file.
REQUEST_OVERHEAD = 1024 * 1024


def upload_limit_bytes() -> int:
    return settings.IMPORT_MAX_UPLOAD_MB * 1024 * 1024


def too_large_message() -> str:
    return f"The file is larger than the {settings.IMPORT_MAX_UPLOAD_MB} MB limit for imports."


class LimitedUploadHandler(FileUploadHandler):
    """Counts an upload's bytes as they arrive and stops storing it past the limit."""

    def __init__(self, request=None, limit: int = 0):
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            # connection_reset=False: the rest of the body is read and dropped, so the client
            # still gets the page saying why.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        return None


def install_upload_limit(request) -> LimitedUploadHandler | None:
    """Put the counting handler first; None when Content-Length alone shows the body is too big."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > upload_limit_bytes() + REQUEST_OVERHEAD:
        return None
    handler = LimitedUploadHandler(request, upload_limit_bytes())
    request.upload_handlers.insert(0, handler)
    return handler


@require_GET
@member_required
def import_list(request):
    page = Paginator(imports_for_workspace(workspace_id=request.member.workspace_id), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "subscribers/import_list.html", {"page": page, "imports": page.object_list})


# CSRF is checked by the inner view: the upload handler must be installed before anything
# reads the request body, and the CSRF middleware would read it first.
@csrf_exempt
@require_http_methods(["GET", "POST"])
@member_required
def import_new(request):
    handler = None
    if request.method == "POST":
        require_write(request.member)
        handler = install_upload_limit(request)
        if handler is None:
            return _import_new_too_large(request)
    return _import_new(request, handler)


@csrf_protect
def _import_new_too_large(request):
    # The body was not read (so there is no form data to redisplay): a fresh form and the reason.
    form = ImportUploadForm(workspace_id=request.member.workspace_id)
    return _render_new(request, form, status=413, error=too_large_message())


def _render_new(request, form, status: int = 200, error: str = ""):
    context = {"form": form, "max_mb": settings.IMPORT_MAX_UPLOAD_MB, "upload_error": error}
    return render(request, "subscribers/import_new.html", context, status=status)


@csrf_protect
def _import_new(request, handler: LimitedUploadHandler | None):
    workspace_id = request.member.workspace_id
    if request.method != "POST":
        return _render_new(request, ImportUploadForm(workspace_id=workspace_id))
    form = ImportUploadForm(request.POST, request.FILES, workspace_id=workspace_id)
    if handler is not None and handler.exceeded:
        return _render_new(request, ImportUploadForm(workspace_id=workspace_id), status=413, error=too_large_message())
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            imp = import_upload(
                workspace_id=workspace_id,
                actor=request.user,
                chunks=upload.chunks(),
                original_name=upload.name,
                mode=form.cleaned_data["mode"],
                mailing_list=form.cleaned_data["mailing_list"],
            )
        except ValidationError as exc:
            form.add_error("file", exc.messages)
        else:
            return redirect("subscribers:import_mapping", imp.pk)
    return _render_new(request, form, status=400)


@require_http_methods(["GET", "POST"])
@member_required
def import_mapping(request, import_id):
    imp = get_import_for_member(request.member, import_id, write=request.method == "POST")
    if imp.status != Import.Status.UPLOADED:
        return redirect("subscribers:import_detail", imp.pk)
    form = ImportMappingForm(request.POST or None, imp=imp)
    if request.method == "POST":
        if "discard" in request.POST:
            import_discard(imp=imp)
            messages.success(request, f"The upload of {imp.original_name} was discarded.")
            return redirect("subscribers:imports")
        if form.is_valid():
            try:
                import_configure(
                    imp=imp, mapping=form.cleaned_data["mapping"], has_header=form.cleaned_data["has_header"]
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                return redirect("subscribers:import_detail", imp.pk)
    context = {"imp": imp, "form": form, "encoding": display_encoding(imp.encoding)}
    return render(request, "subscribers/import_mapping.html", context, status=400 if form.errors else 200)


@require_GET
@member_required
def import_detail(request, import_id):
    imp = get_import_for_member(request.member, import_id)
    if imp.status == Import.Status.UPLOADED:
        return redirect("subscribers:import_mapping", imp.pk)
    return render(request, "subscribers/import_detail.html", {"imp": imp, "progress": import_progress(imp=imp)})


@require_GET
@member_required
def import_progress_json(request, import_id):
    imp = get_import_for_member(request.member, import_id)
    data = import_progress(imp=imp)
    data["error_report_url"] = reverse("subscribers:import_errors", args=[imp.pk]) if data["has_error_report"] else None
    return JsonResponse(data, headers={"Cache-Control": "no-store"})


@require_http_methods(["GET", "POST"])
@member_required
def import_cancel_view(request, import_id):
    imp = get_import_for_member(request.member, import_id, write=True)
    if imp.is_finished:
        messages.info(request, f"This import has already {imp.get_status_display().lower()}.")
        return redirect("subscribers:import_detail", imp.pk)
    if request.method == "POST":
        if import_cancel(imp=imp):
            messages.success(request, "The import was cancelled. Rows written before now were kept.")
        return redirect("subscribers:import_detail", imp.pk)
    return render(request, "subscribers/import_cancel.html", {"imp": imp})


@require_GET
@member_required
def import_error_report(request, import_id):
    return rejected_rows_download(get_import_for_member(request.member, import_id))


def rejected_rows_download(imp: Import) -> FileResponse:
    """The CSV of an import's rejected rows, with the reason for each (the page and the API)."""
    path = import_error_report_path(imp)
    if path is None:
        raise Http404("This import has no rejected rows.")
    return FileResponse(
        open(path, "rb"),  # noqa: SIM115 (FileResponse closes it)
        as_attachment=True,
        filename=f"import-{imp.pk}-rejected-rows.csv",
        content_type="text/csv; charset=utf-8",
    )
