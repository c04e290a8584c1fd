"""Forms for signing in and for a workspace's settings."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import ApiKey, Member, Workspace


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class WorkspaceSettingsForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["name"]


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Member.Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="What will use it, e.g. 'CRM sync'.")
    scope = forms.ChoiceField(choices=ApiKey.Scope.choices, initial=ApiKey.Scope.READ)
