"""Workspace switching and the workspace's settings pages (members, API keys)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import get_api_key_for_member, get_member_for_member, member_for_user, require_manage
from accounts.decorators import member_required
from accounts.forms import ApiKeyForm, MemberRoleForm, WorkspaceSettingsForm
from accounts.middleware import SESSION_WORKSPACE_KEY
from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke, member_remove, member_set_role, workspace_rename


@require_POST
@member_required
def workspace_switch(request):
    wanted = request.POST.get("workspace_id", "")
    member = member_for_user(request.user, wanted)
    if member is None or str(member.workspace_id) != wanted:
        messages.error(request, "You are not a member of that workspace.")
        return redirect("dashboard")
    request.session[SESSION_WORKSPACE_KEY] = member.workspace_id
    messages.success(request, f"Switched to {member.workspace.name}.")
    return redirect("dashboard")


@require_http_methods(["GET", "POST"])
@member_required
def workspace_settings(request):
    member = request.member
    form = WorkspaceSettingsForm(instance=member.workspace)
    if request.method == "POST":
        require_manage(member)
        form = WorkspaceSettingsForm(request.POST, instance=member.workspace)
        if form.is_valid():
            workspace_rename(workspace=member.workspace, name=form.cleaned_data["name"])
            messages.success(request, "Workspace settings saved.")
            return redirect("accounts:settings")
    return _settings_page(request, form=form, status=400 if form.errors else 200)


def _settings_page(request, *, form=None, api_key_form=None, status=200):
    member = request.member
    members = member.workspace.members.select_related("user").order_by("user__email")
    api_keys = (
        ApiKey.objects.filter(workspace_id=member.workspace_id).select_related("created_by")
        if member.can_manage
        else ApiKey.objects.none()
    )
    return render(
        request,
        "accounts/settings.html",
        {
            "form": form or WorkspaceSettingsForm(instance=member.workspace),
            "members": members,
            "role_choices": MemberRoleForm.base_fields["role"].choices,
            "api_keys": api_keys,
            "api_key_form": api_key_form or ApiKeyForm(),
        },
        status=status,
    )


@require_POST
@member_required
def api_key_create_view(request):
    """Creates a key and shows its secret on this one answer; it is never shown again."""
    require_manage(request.member)
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            key, secret = api_key_create(
                workspace=request.member.workspace,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            response = render(request, "accounts/api_key_created.html", {"key": key, "secret": secret})
            response["Cache-Control"] = "no-store"
            return response
    return _settings_page(request, api_key_form=form, status=400)


@require_http_methods(["GET", "POST"])
@member_required
def api_key_revoke_view(request, key_id):
    key = get_api_key_for_member(request.member, key_id)
    if request.method == "GET":
        return render(request, "accounts/api_key_revoke.html", {"key": key})
    api_key_revoke(key=key)
    messages.success(request, f"The key {key.name!r} was revoked; requests using it are refused from now on.")
    return redirect("accounts:settings")


@require_POST
@member_required
def member_role(request, member_id):
    target = get_member_for_member(request.member, member_id, write=True)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the listed roles.")
        return redirect("accounts:settings")
    try:
        member_set_role(member=target, role=form.cleaned_data["role"], actor=request.member)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{target.user.email} is now {target.get_role_display().lower()}.")
    return redirect("accounts:settings")


@require_http_methods(["GET", "POST"])
@member_required
def member_remove_view(request, member_id):
    target = get_member_for_member(request.member, member_id, write=True)
    if request.method == "GET":
        return render(request, "accounts/member_remove.html", {"target": target})
    try:
        member_remove(member=target, actor=request.member)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{target.user.email} was removed from the workspace.")
    return redirect("accounts:settings")
