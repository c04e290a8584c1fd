"""Forms of the subscribers pages; they parse input, the services decide what is allowed."""

import json

from django import forms

from subscribers.models import MailingList, Subscriber, Suppression
from subscribers.services import BULK_ACTIONS


class JSONObjectField(forms.CharField):
    """A textarea holding a JSON object; an empty box means {}."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"})

    def to_python(self, value):
        value = super().to_python(value).strip()
        if not value:
            return {}
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"This is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError('Enter a JSON object, like {"plan": "pro", "city": "Lyon"}.')
        return parsed

    def prepare_value(self, value):
        if isinstance(value, dict):
            return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
        return value


class SubscriberFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", widget=forms.TextInput(attrs={"placeholder": "Email or name"}))
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Subscriber.Status.choices])
    list = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="List")
    segment = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Segment")
    after = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args, lists, segments, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["list"].choices = [("", "Any list"), *((m.pk, m.name) for m in lists)]
        self.fields["segment"].choices = [("", "No segment"), *((s.pk, s.name) for s in segments)]


class SubscriberForm(forms.Form):
    email = forms.CharField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    name = forms.CharField(max_length=200, required=False)
    attributes = JSONObjectField(required=False, help_text='Custom fields as JSON, e.g. {"plan": "pro"}.')
    lists = forms.TypedMultipleChoiceField(
        required=False, coerce=int, widget=forms.CheckboxSelectMultiple, help_text="Added as confirmed members."
    )
    status = forms.ChoiceField(choices=Subscriber.Status.choices)

    def __init__(self, *args, lists=(), editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["lists"]
        else:
            del self.fields["status"]
            self.fields["lists"].choices = [(m.pk, m.name) for m in lists]


class MailingListForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    opt_in = forms.ChoiceField(
        choices=MailingList.OptIn.choices,
        label="Opt-in",
        help_text="Double opt-in emails each new address a confirmation link before it joins.",
        widget=forms.RadioSelect,
    )
    consent_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Consent text",
        help_text="Shown next to the checkbox on the subscribe form and kept with each person's consent record.",
    )


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=120)
    rules = forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}))

    def clean_rules(self):
        try:
            return json.loads(self.cleaned_data["rules"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"The rules are not valid JSON ({exc.msg}).") from None


class SuppressionForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[(Suppression.Kind.ADDRESS, "Address"), (Suppression.Kind.DOMAIN, "Whole domain")], initial="address"
    )
    value = forms.CharField(
        max_length=254, label="Address or domain", widget=forms.TextInput(attrs={"placeholder": "name@example.com"})
    )
    note = forms.CharField(max_length=500, required=False)


class SuppressionSearchForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *Suppression.Kind.choices])
    after = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(choices=list(BULK_ACTIONS.items()))
    ids = forms.TypedMultipleChoiceField(coerce=int, error_messages={"required": "Select at least one subscriber."})
    list_id = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="List")

    def __init__(self, *args, lists, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["list_id"].choices = [("", "Choose a list"), *((m.pk, m.name) for m in lists)]
        # Any id is acceptable input; the service keeps to the caller's workspace.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit()

    def clean(self):
        data = super().clean()
        if data.get("action") in ("add_to_list", "remove_from_list") and not data.get("list_id"):
            self.add_error("list_id", "Choose the list.")
        return data


class MembershipForm(forms.Form):
    list_id = forms.TypedChoiceField(coerce=int, label="List")

    def __init__(self, *args, lists, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["list_id"].choices = [(m.pk, m.name) for m in lists]


class SubscribeForm(forms.Form):
    """The public form. `website` is a honeypot: hidden from people, filled in by bots."""

    email = forms.CharField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    name = forms.CharField(max_length=200, required=False)
    consent = forms.BooleanField(error_messages={"required": "Tick the box to agree, or we cannot subscribe you."})
    website = forms.CharField(required=False, label="Leave this empty")
