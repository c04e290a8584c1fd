"""Forms for signing in and for a workspace's settings."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import Member, Workspace


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
