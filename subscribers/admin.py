"""Django admin for the subscribers app. Changes made here go through the services and the audit trail."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from subscribers import admin_imports  # noqa: F401 (registers the imports' admin)
from subscribers.models import AuditEntry, ListMembership, MailingList, Segment, Subscriber, Suppression
from subscribers.services import (
    list_delete,
    segment_delete,
    subscriber_delete,
    subscriber_unsubscribe,
    suppression_remove,
)


class MembershipInline(admin.TabularInline):
    model = ListMembership
    extra = 0
    fields = ["mailing_list", "status", "subscribed_at", "confirmed_at", "unsubscribed_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class DeleteThroughServiceMixin:
    """Deleting here (one object or a selection) goes through the app's service, one at a time,
    so each deletion writes its audit entry and does its cleanup."""

    def delete_through_service(self, obj, actor) -> None:
        raise NotImplementedError

    def delete_model(self, request, obj):
        self.delete_through_service(obj, request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_through_service(obj, request.user)


class ReadOnlyMixin:
    """Records that only Herald itself writes: they can be read and deleted here, never added or edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Subscriber)
class SubscriberAdmin(DeleteThroughServiceMixin, admin.ModelAdmin):
    list_display = ["email", "name", "workspace", "status", "source", "created_at"]
    list_filter = ["status", "source", "workspace"]
    search_fields = ["email", "name"]
    list_select_related = ["workspace"]
    show_full_result_count = False  # a COUNT(*) over millions of rows on every page is not worth it
    readonly_fields = [
        "workspace",
        "email",
        "status",
        "status_changed_at",
        "consent_at",
        "consent_method",
        "consent_ip",
        "consent_text",
        "created_at",
        "updated_at",
        "last_activity_at",
    ]
    fields = ["workspace", "email", "name", "attributes", "source", *readonly_fields[2:]]
    inlines = [MembershipInline]
    actions = ["unsubscribe_selected"]

    def has_add_permission(self, request):
        # New subscribers come through the dashboard, the API, forms and imports, which validate them.
        return False

    def save_model(self, request, obj, form, change):
        from subscribers.services import subscriber_update

        original = Subscriber.objects.get(pk=obj.pk)
        subscriber_update(
            subscriber=original,
            actor=request.user,
            name=form.cleaned_data.get("name"),
            attributes=form.cleaned_data.get("attributes"),
        )

    def delete_through_service(self, obj, actor):
        subscriber_delete(subscriber=obj, actor=actor)

    @admin.action(description="Unsubscribe the selected subscribers from everything")
    def unsubscribe_selected(self, request, queryset):
        changed = sum(
            subscriber_unsubscribe(subscriber_id=s.pk, workspace_id=s.workspace_id, actor=request.user, method="admin")
            for s in queryset
        )
        self.message_user(request, f"{changed} subscriber(s) unsubscribed.", messages.SUCCESS)


@admin.register(MailingList)
class MailingListAdmin(DeleteThroughServiceMixin, admin.ModelAdmin):
    list_display = ["name", "workspace", "opt_in", "created_at"]
    list_filter = ["opt_in", "workspace"]
    search_fields = ["name", "workspace__name"]
    readonly_fields = ["workspace", "public_token", "created_at", "updated_at"]
    fields = ["workspace", "name", "description", "opt_in", "consent_text", *readonly_fields[1:]]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        from subscribers.services import list_update

        try:
            list_update(
                mailing_list=MailingList.objects.get(pk=obj.pk),
                actor=request.user,
                **{f: form.cleaned_data[f] for f in ("name", "description", "opt_in", "consent_text")},
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)

    def delete_through_service(self, obj, actor):
        list_delete(mailing_list=obj, actor=actor)


@admin.register(ListMembership)
class ListMembershipAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["subscriber", "mailing_list", "status", "subscribed_at", "confirmed_at", "unsubscribed_at"]
    list_filter = ["status", "workspace"]
    search_fields = ["subscriber__email", "mailing_list__name"]
    list_select_related = ["subscriber", "mailing_list"]
    show_full_result_count = False
    readonly_fields = [f.name for f in ListMembership._meta.fields]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Segment)
class SegmentAdmin(ReadOnlyMixin, DeleteThroughServiceMixin, admin.ModelAdmin):
    list_display = ["name", "workspace", "updated_at"]
    list_filter = ["workspace"]
    search_fields = ["name"]
    readonly_fields = ["workspace", "name", "rules", "created_at", "updated_at"]

    def delete_through_service(self, obj, actor):
        segment_delete(segment=obj, actor=actor)


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyMixin, DeleteThroughServiceMixin, admin.ModelAdmin):
    list_display = ["value", "kind", "reason", "workspace", "created_at", "created_by"]
    list_filter = ["kind", "reason", "workspace"]
    search_fields = ["value", "note"]
    list_select_related = ["workspace", "created_by"]
    readonly_fields = ["workspace", "kind", "value", "reason", "note", "created_at", "created_by"]

    def delete_through_service(self, obj, actor):
        suppression_remove(suppression=obj, actor=actor)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The trail is evidence: it can be read and searched, never edited or deleted here."""

    list_display = ["created_at", "workspace", "actor_label", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type", "workspace"]
    search_fields = ["actor_label", "object_repr"]
    list_select_related = ["workspace"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at",
        "workspace",
        "actor_label",
        "actor_user",
        "actor_api_key",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "subscriber_id",
        "changes",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
