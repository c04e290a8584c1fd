"""Dashboard home, workspace switching and the workspace's settings pages."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import get_member_for_member, member_for_user, require_manage
from accounts.decorators import member_required
from accounts.forms import MemberRoleForm, WorkspaceSettingsForm
from accounts.middleware import SESSION_WORKSPACE_KEY
from accounts.services import member_remove, member_set_role, workspace_rename


@member_required
def dashboard(request):
    return render(request, "dashboard/home.html")


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
    members = member.workspace.members.select_related("user").order_by("user__email")
    return render(
        request,
        "accounts/settings.html",
        {"form": form, "members": members, "role_choices": MemberRoleForm.base_fields["role"].choices},
        status=400 if form.errors else 200,
    )


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
