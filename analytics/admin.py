"""Admin pages for analytics: events (read-only), rollups, and the sync cursors."""

from django.contrib import admin

from analytics.models import CampaignRollup, Cursor, Event, OutcomeRollup


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rollups and events are written only by the drain and the syncs; the admin just shows them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "campaign_id", "delivery_id", "occurred_at", "is_bot", "bot_reason", "client")
    list_filter = ("type", "is_bot")
    search_fields = ("=campaign__id", "=delivery_id", "=subscriber_id")
    # The table grows to hundreds of millions of rows: no full count, no date hierarchy.
    show_full_result_count = False
    list_select_related = False
    ordering = ("-id",)


@admin.register(CampaignRollup)
class CampaignRollupAdmin(ReadOnlyAdmin):
    list_display = (
        "campaign",
        "workspace",
        "sent",
        "delivered",
        "unique_opens",
        "unique_clicks",
        "bounced",
        "complained",
        "unsubscribed",
        "last_event_at",
    )
    list_select_related = ("campaign", "workspace")
    search_fields = ("campaign__name",)


@admin.register(OutcomeRollup)
class OutcomeRollupAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "outcome", "reason", "count")
    list_filter = ("outcome",)
    list_select_related = ("campaign",)


@admin.register(Cursor)
class CursorAdmin(ReadOnlyAdmin):
    list_display = ("name", "position", "last_id", "updated_at")
