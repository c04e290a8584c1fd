"""Django admin for subscriber imports: read-only, with actions to cancel one or queue it again.

Loaded from subscribers/admin.py (`from subscribers import admin_imports  # noqa: F401`).
"""

from django.contrib import admin, messages

from subscribers.imports import import_cancel, imports_resume_stalled
from subscribers.models import Import


@admin.register(Import)
class ImportAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "original_name",
        "workspace",
        "mode",
        "status",
        "phase",
        "total_rows",
        "inserted",
        "updated",
        "rejected",
        "duplicates",
        "suppressed_skipped",
        "attempt",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "mode", "phase"]
    search_fields = ["original_name", "workspace__name", "created_by__email"]
    list_select_related = ["workspace"]
    date_hierarchy = "created_at"
    actions = ["cancel_imports", "resume_stalled_imports"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected imports (rows already written stay)")
    def cancel_imports(self, request, queryset):
        cancelled = sum(import_cancel(imp=imp) for imp in queryset)
        self.message_user(request, f"{cancelled} import(s) cancelled.", messages.SUCCESS)

    @admin.action(description="Queue again every import whose worker went silent")
    def resume_stalled_imports(self, request, queryset):
        resumed = imports_resume_stalled()
        self.message_user(request, f"{len(resumed)} stalled import(s) queued again.", messages.SUCCESS)
