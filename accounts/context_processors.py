"""Template context for the layout: the current workspace and the others the user can switch to."""

from accounts.models import Member


def workspace(request):
    member = getattr(request, "member", None)

    def other_memberships():
        if not member:
            return []
        return list(
            Member.objects.filter(user_id=member.user_id, workspace__is_active=True)
            .exclude(pk=member.pk)
            .select_related("workspace")
            .order_by("workspace__name")
        )

    return {"current_member": member, "other_memberships": other_memberships}
