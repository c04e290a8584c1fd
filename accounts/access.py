"""Access helpers: the one way views, the API and tasks load a tenant-owned object.

Each helper takes the caller's membership and an id, and answers 404 for anything outside
the caller's workspace (so a guessed id reveals nothing) and 403 when the caller's role may
see but not change it. Other apps build their helpers on `get_for_member`.
"""

from typing import TypeVar

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404

from accounts.models import ApiKey, Member

ModelT = TypeVar("ModelT", bound=models.Model)


def require_write(member: Member) -> None:
    if not member.can_write:
        raise PermissionDenied("Your role in this workspace can view but not change this.")


def require_manage(member: Member) -> None:
    if not member.can_manage:
        raise PermissionDenied("Only the workspace's owners and admins can do this.")


def get_for_member(queryset: models.QuerySet[ModelT], *, member: Member, pk: object, write: bool = False) -> ModelT:
    """The object with this id in the member's workspace, or 404; 403 if `write` and read-only."""
    try:
        obj = queryset.get(workspace_id=member.workspace_id, pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404(f"No {queryset.model._meta.verbose_name} with that id in this workspace.") from None
    if write:
        require_write(member)
    return obj


def get_member_for_member(member: Member, member_id: object, *, write: bool = False) -> Member:
    """A fellow member of the caller's workspace; changing one takes an owner or admin."""
    target = get_for_member(Member.objects.select_related("user"), member=member, pk=member_id)
    if write:
        require_manage(member)
    return target


def member_for_user(user, workspace_id: object | None) -> Member | None:
    """The user's membership in the workspace they chose, else their first one, else None."""
    if not user.is_authenticated:
        return None
    memberships = Member.objects.select_related("workspace", "user").filter(user=user, workspace__is_active=True)
    if workspace_id is not None:
        chosen = memberships.filter(workspace_id=workspace_id).first() if str(workspace_id).isdigit() else None
        if chosen:
            return chosen
    return memberships.order_by("workspace__name", "workspace_id").first()


def get_api_key_for_member(member: Member, key_id: object) -> ApiKey:
    """One of the workspace's API keys; seeing or changing keys takes an owner or admin."""
    key = get_for_member(ApiKey.objects.select_related("created_by"), member=member, pk=key_id)
    require_manage(member)
    return key
