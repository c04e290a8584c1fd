"""View decorators for the marketer's dashboard."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render


def member_required(view):
    """Signed in and a member of a workspace; otherwise the login page or a clear explanation."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.member:
            return render(request, "accounts/no_workspace.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper
