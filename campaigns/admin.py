"""Django admin for campaigns: platform default relays (no workspace), campaigns, the ledger, transactional mail.

Admin actions call the same services as the dashboard.
"""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from campaigns import services
from campaigns.models import (
    Campaign,
    CampaignLink,
    Delivery,
    Relay,
    Sender,
    SendingDomain,
    Template,
    TransactionalMessage,
)
from campaigns.relays import relay_test


class RelayAdminForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Stored encrypted. Leave empty to keep the current password.",
    )

    class Meta:
        model = Relay
        fields = [
            "workspace",
            "name",
            "is_active",
            "host",
            "port",
            "tls_mode",
            "username",
            "password",
            "timeout_seconds",
            "priority",
            "weight",
            "max_per_second",
            "max_connections",
        ]

    def clean_password(self):
        # An empty field keeps the stored password instead of erasing it.
        return self.cleaned_data.get("password") or (self.instance.password if self.instance.pk else "")


@admin.register(Relay)
class RelayAdmin(admin.ModelAdmin):
    form = RelayAdminForm
    list_display = [
        "name",
        "workspace_label",
        "host",
        "port",
        "tls_mode",
        "priority",
        "weight",
        "circuit_state",
        "is_active",
    ]
    list_filter = [("workspace", admin.EmptyFieldListFilter), "circuit_state", "is_active", "tls_mode"]
    search_fields = ["name", "host", "workspace__name"]
    autocomplete_fields = ["workspace"]
    readonly_fields = [
        "circuit_state",
        "circuit_failures",
        "circuit_opened_at",
        "last_error",
        "last_error_at",
        "last_success_at",
    ]
    actions = ["test_relays", "reset_circuits"]
    fieldsets = [
        (None, {"fields": ["workspace", "name", "is_active"]}),
        ("Server", {"fields": ["host", "port", "tls_mode", "username", "password", "timeout_seconds"]}),
        ("Routing and limits", {"fields": ["priority", "weight", "max_per_second", "max_connections"]}),
        ("Circuit breaker", {"fields": readonly_fields}),
    ]

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_label(self, relay):
        return relay.workspace.name if relay.workspace_id else "Platform default"

    @admin.action(description="Test the selected relays (connect, log in, NOOP)")
    def test_relays(self, request, queryset):
        for relay in queryset:
            ok, detail = relay_test(relay=relay)
            self.message_user(request, f"{relay.name}: {detail}", messages.SUCCESS if ok else messages.ERROR)

    @admin.action(description="Close the circuit of the selected relays")
    def reset_circuits(self, request, queryset):
        queryset.update(circuit_state=Relay.Circuit.CLOSED, circuit_failures=0, circuit_opened_at=None)


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "subject", "updated_at"]
    search_fields = ["name", "subject", "workspace__name"]
    list_filter = ["workspace"]
    readonly_fields = ["created_at", "updated_at", "created_by"]


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "workspace", "verified_at"]
    search_fields = ["email", "workspace__name"]
    list_filter = [("verified_at", admin.EmptyFieldListFilter)]


@admin.register(SendingDomain)
class SendingDomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "workspace", "dkim_selector", "verified_at"]
    search_fields = ["domain", "workspace__name"]
    exclude = ["dkim_private_key"]


class CampaignLinkInline(admin.TabularInline):
    model = CampaignLink
    extra = 0
    can_delete = False
    readonly_fields = ["position", "url"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "workspace",
        "status",
        "recipient_count",
        "sent_count",
        "failed_count",
        "bounced_count",
        "send_at",
    ]
    list_filter = ["status"]
    search_fields = ["name", "subject", "workspace__name"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "status",
        "recipient_count",
        "sent_count",
        "failed_count",
        "bounced_count",
        "complained_count",
        "started_at",
        "finished_at",
        "paused_at",
        "pause_reason",
        "created_by",
    ]
    raw_id_fields = ["template", "sender", "segment"]
    filter_horizontal = ["lists", "exclude_lists"]
    inlines = [CampaignLinkInline]
    actions = ["pause", "resume", "cancel"]

    def _apply(self, request, queryset, service, verb):
        done = 0
        for campaign in queryset:
            try:
                service(campaign=campaign, actor=request.user)
                done += 1
            except services.CampaignError as error:
                self.message_user(request, f"{campaign.name}: {error.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{verb} {done} campaign(s).", messages.SUCCESS)

    @admin.action(description="Pause the selected campaigns")
    def pause(self, request, queryset):
        self._apply(request, queryset, services.campaign_pause, "Paused")

    @admin.action(description="Resume the selected campaigns")
    def resume(self, request, queryset):
        self._apply(request, queryset, services.campaign_resume, "Resumed")

    @admin.action(description="Cancel the selected campaigns")
    def cancel(self, request, queryset):
        self._apply(request, queryset, services.campaign_cancel, "Cancelled")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["email", "campaign", "status", "attempts", "smtp_code", "relay", "sent_at"]
    list_filter = ["status"]
    search_fields = ["email", "message_id"]
    raw_id_fields = ["campaign", "subscriber", "relay"]
    list_select_related = ["campaign", "relay"]
    show_full_result_count = False  # the ledger is large; counting it on every page is slow

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(TransactionalMessage)
class TransactionalMessageAdmin(admin.ModelAdmin):
    list_display = [
        "to_email",
        "workspace",
        "status",
        "attempts",
        "next_attempt_at",
        "smtp_code",
        "relay",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["to_email", "message_id", "workspace__name"]
    list_select_related = ["workspace", "relay"]
    exclude = ["payload"]
    actions = ["retry_now"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields if field.name != "payload"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry the selected deferred messages now")
    def retry_now(self, request, queryset):
        due = queryset.filter(status=TransactionalMessage.Status.DEFERRED).update(next_attempt_at=timezone.now())
        self.message_user(request, f"{due} deferred messages will be retried within seconds.", messages.SUCCESS)
