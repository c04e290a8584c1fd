"""Django admin for backups and restore drills (read-only: made by `manage.py backup`,
`manage.py restore_drill` and beat), synthetic checks, alert channels, and alerts (acknowledged
from here)."""

from django.contrib import admin, messages

from operations.alerting import alert_acknowledge
from operations.models import Alert, AlertChannel, AlertNotification, Backup, RestoreDrill, SyntheticCheck


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


@admin.register(SyntheticCheck)
class SyntheticCheckAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "ok", "duration_ms", "failed_step", "error"]
    list_filter = ["ok", "failed_step"]
    date_hierarchy = "started_at"


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "target", "min_severity", "receives_escalations", "enabled"]
    list_filter = ["kind", "enabled", "min_severity"]
    search_fields = ["name", "target"]


class AlertNotificationInline(admin.TabularInline):
    model = AlertNotification
    extra = 0
    can_delete = False
    fields = ["channel", "kind", "status", "attempts", "sent_at", "next_attempt_at", "last_error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["summary", "severity", "status", "fired_at", "acknowledged_by", "resolved_at"]
    list_filter = ["status", "severity", "rule"]
    search_fields = ["summary", "fingerprint"]
    inlines = [AlertNotificationInline]
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge (stops escalation)")
    def acknowledge(self, request, queryset):
        for alert in queryset.filter(acknowledged_at__isnull=True):
            alert_acknowledge(alert=alert, by=request.user.get_username())
        self.message_user(request, "Acknowledged.", messages.SUCCESS)
