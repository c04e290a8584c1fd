"""Django admin for backups and restore drills (read-only: they are made by `manage.py backup`,
`manage.py restore_drill` and the beat schedule)."""

from django.contrib import admin

from operations.models import Backup, RestoreDrill


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "status", "file_name", "size_bytes", "finished_at"]
    list_filter = ["status"]
    search_fields = ["file_name", "error"]


@admin.register(RestoreDrill)
class RestoreDrillAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "status", "backup", "finished_at"]
    list_filter = ["status"]
    search_fields = ["error"]
