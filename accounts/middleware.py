"""Resolves request.member and request.workspace for the signed-in user, lazily."""

from django.utils.functional import SimpleLazyObject

from accounts.access import member_for_user

SESSION_WORKSPACE_KEY = "workspace_id"


class WorkspaceMiddleware:
    """Sets `request.member` (falsy when the user has no workspace) and `request.workspace`.

    Both are lazy so that requests that never look at them (health checks, tracking,
    static files) touch neither the session nor the database.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        def resolve_member():
            return member_for_user(request.user, request.session.get(SESSION_WORKSPACE_KEY))

        request.member = SimpleLazyObject(resolve_member)
        request.workspace = SimpleLazyObject(lambda: request.member.workspace if request.member else None)
        return self.get_response(request)
