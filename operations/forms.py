"""Forms for the operators' incident pages and the public status subscription."""

from django import forms

from operations.incidents import COMPONENTS
from operations.models import Incident

_OPEN_STATUSES = [choice for choice in Incident.Status.choices if choice[0] != Incident.Status.RESOLVED]


class IncidentOpenForm(forms.Form):
    title = forms.CharField(max_length=200)
    impact = forms.ChoiceField(choices=Incident.Impact.choices, initial=Incident.Impact.MINOR)
    components = forms.MultipleChoiceField(choices=list(COMPONENTS.items()), widget=forms.CheckboxSelectMultiple)
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), help_text="What clients see first.")
    estimated_resolution_at = forms.DateTimeField(
        required=False, label="Estimated resolution (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )


class IncidentUpdateForm(forms.Form):
    status = forms.ChoiceField(choices=_OPEN_STATUSES)
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}))
    estimated_resolution_at = forms.DateTimeField(
        required=False, label="Estimated resolution (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )


class IncidentResolveForm(forms.Form):
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), initial="This incident has been resolved.")
    postmortem = forms.CharField(
        label="Post-incident summary",
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What happened, the impact, the cause, and what will prevent it.",
    )


class StatusSubscribeForm(forms.Form):
    email = forms.EmailField()
