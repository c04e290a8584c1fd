"""Forms of the campaign and relay pages; choices are always scoped to the caller's workspace."""

from datetime import UTC

from django import forms
from django.utils import timezone

from campaigns.models import Campaign, Relay, Sender, Template
from subscribers.models import MailingList, Segment


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    template = forms.ModelChoiceField(
        queryset=Template.objects.none(),
        required=False,
        help_text="Its subject and content are copied into the campaign; leave the fields below empty to use them.",
    )
    subject = forms.CharField(max_length=500, required=False, help_text="Merge tags work: {{ subscriber.first_name }}")
    preheader = forms.CharField(max_length=500, required=False)
    html = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}), required=False, label="HTML body")
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        label="Text body",
        help_text="Empty: made from the HTML.",
    )
    sender = forms.ModelChoiceField(queryset=Sender.objects.none(), required=False, label="From")
    reply_to = forms.EmailField(required=False, label="Reply-To")
    lists = forms.ModelMultipleChoiceField(
        queryset=MailingList.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    segment = forms.ModelChoiceField(queryset=Segment.objects.none(), required=False)
    exclude_lists = forms.ModelMultipleChoiceField(
        queryset=MailingList.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Exclude members of",
    )
    rate_limit_per_second = forms.IntegerField(
        min_value=1,
        required=False,
        label="Rate limit (messages per second)",
        help_text="Empty: as fast as the relays allow.",
    )
    track_opens = forms.BooleanField(required=False, initial=True)
    track_clicks = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, workspace, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = Template.objects.filter(workspace=workspace)
        self.fields["sender"].queryset = Sender.objects.filter(workspace=workspace)
        self.fields["sender"].label_from_instance = lambda s: f"{s}" if s.is_verified else f"{s} (not verified)"
        self.fields["lists"].queryset = MailingList.objects.filter(workspace=workspace)
        self.fields["exclude_lists"].queryset = MailingList.objects.filter(workspace=workspace)
        self.fields["segment"].queryset = Segment.objects.filter(workspace=workspace)
        if editing:
            del self.fields["template"]

    def clean(self):
        data = super().clean()
        if not data.get("template") and not (data.get("subject") or "").strip() and "subject" not in self.errors:
            self.add_error("subject", "Write a subject or choose a template.")
        return data

    @classmethod
    def initial_for(cls, campaign: Campaign) -> dict:
        return {
            "name": campaign.name,
            "subject": campaign.subject,
            "preheader": campaign.preheader,
            "html": campaign.html,
            "text": campaign.text,
            "sender": campaign.sender_id,
            "reply_to": campaign.reply_to,
            "lists": list(campaign.lists.values_list("pk", flat=True)),
            "exclude_lists": list(campaign.exclude_lists.values_list("pk", flat=True)),
            "segment": campaign.segment_id,
            "rate_limit_per_second": campaign.rate_limit_per_second,
            "track_opens": campaign.track_opens,
            "track_clicks": campaign.track_clicks,
        }

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        arguments = {
            "name": data["name"],
            "sender_id": data["sender"].pk if data.get("sender") else None,
            "reply_to": data.get("reply_to") or "",
            "list_ids": [item.pk for item in data.get("lists") or []],
            "exclude_list_ids": [item.pk for item in data.get("exclude_lists") or []],
            "segment_id": data["segment"].pk if data.get("segment") else None,
            "rate_limit_per_second": data.get("rate_limit_per_second"),
            "track_opens": bool(data.get("track_opens")),
            "track_clicks": bool(data.get("track_clicks")),
        }
        # With a template, empty content fields mean "take the template's".
        template = data.get("template")
        for field in ("subject", "preheader", "html", "text"):
            value = data.get(field) or ""
            arguments[field] = value if (value or template is None) else None
        if "template" in self.fields:
            arguments["template"] = template
        return arguments


class ScheduleForm(forms.Form):
    send_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        label="Send at (UTC)",
        help_text="Empty: send now.",
    )

    def clean_send_at(self):
        value = self.cleaned_data.get("send_at")
        if value is not None and timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
        return value


class RelayForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Stored encrypted. Leave empty to keep the current password.",
    )

    class Meta:
        model = Relay
        fields = [
            "name",
            "host",
            "port",
            "tls_mode",
            "username",
            "password",
            "priority",
            "weight",
            "max_per_second",
            "max_connections",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["password"] = ""

    def clean_port(self):
        port = self.cleaned_data["port"]
        if not 1 <= port <= 65535:
            raise forms.ValidationError("A port is a number from 1 to 65535.")
        return port

    def clean_weight(self):
        weight = self.cleaned_data["weight"]
        if weight < 1:
            raise forms.ValidationError("The weight is at least 1.")
        return weight

    def clean_max_connections(self):
        value = self.cleaned_data["max_connections"]
        if value < 1:
            raise forms.ValidationError("At least one connection.")
        return value
