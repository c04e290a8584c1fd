"""Who may see a report, even while no database answers.

Reports are read-only and must keep answering from cached figures during a database outage
(ARCHITECTURE.md invariant 4), but Django loads the signed-in user from Postgres. So each time
a report page is served normally, a small snapshot of the caller's membership (workspace, role,
and the session auth hash Django checks) is cached in Redis. When the database is away the
session (cached_db: Redis first) still names the user, and the snapshot stands in for the
member only if its session hash matches the session's: a signed-out or password-changed
session gets nothing.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from functools import wraps

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.db import DatabaseError
from django.shortcuts import render

from accounts.access import get_for_member
from accounts.middleware import SESSION_WORKSPACE_KEY
from campaigns.models import Campaign

SNAPSHOT_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class SnapshotWorkspace:
    id: int
    name: str


@dataclass(frozen=True)
class SnapshotUser:
    id: int
    email: str
    is_staff: bool
    is_authenticated: bool = True


@dataclass(frozen=True)
class MemberSnapshot:
    """Enough of a Member for read-only report pages and the layout."""

    pk: int
    user_id: int
    workspace_id: int
    workspace: SnapshotWorkspace
    role: str
    role_display: str
    user: SnapshotUser
    degraded: bool = True

    def get_role_display(self) -> str:
        return self.role_display

    @property
    def can_write(self) -> bool:
        return False  # nothing is written while the database is away


def _snapshot_key(user_id, workspace_id) -> str:
    return f"analytics:member:{user_id}:{workspace_id or 'default'}"


def remember_member(request) -> None:
    """Cache the caller's membership snapshot (every time: Redis may have restarted empty since)."""
    member, user = request.member, request.user
    data = {
        "pk": member.pk,
        "user_id": user.pk,
        "workspace_id": member.workspace_id,
        "workspace_name": member.workspace.name,
        "role": member.role,
        "role_display": member.get_role_display(),
        "email": user.email,
        "is_staff": user.is_staff,
        "hash": user.get_session_auth_hash(),
    }
    chosen = request.session.get(SESSION_WORKSPACE_KEY)
    cache.set(_snapshot_key(user.pk, chosen), data, SNAPSHOT_SECONDS)


def member_from_snapshot(request) -> MemberSnapshot | None:
    try:
        session = request.session
        user_id = session.get(SESSION_KEY)
        session_hash = session.get(HASH_SESSION_KEY) or ""
        chosen = session.get(SESSION_WORKSPACE_KEY)
        session.get(BACKEND_SESSION_KEY)
    except DatabaseError:
        return None  # the session itself is only in Postgres (Redis lost it)
    if not user_id:
        return None
    data = cache.get(_snapshot_key(user_id, chosen))
    if not data or not hmac.compare_digest(str(data["hash"]), str(session_hash)):
        return None
    return MemberSnapshot(
        pk=data["pk"],
        user_id=data["user_id"],
        workspace_id=data["workspace_id"],
        workspace=SnapshotWorkspace(data["workspace_id"], data["workspace_name"]),
        role=data["role"],
        role_display=data["role_display"],
        user=SnapshotUser(data["user_id"], data["email"], data["is_staff"]),
    )


def report_member_required(view):
    """Like accounts' member_required, but a database outage falls back to the cached membership.

    The view gets `member` as a keyword: a real Member normally, a MemberSnapshot during an outage.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            member = request.member
            if not member:
                return render(request, "accounts/no_workspace.html", status=403)
            remember_member(request)
        except DatabaseError:
            member = member_from_snapshot(request)
            if member is None:
                raise  # the 503 "temporarily unavailable" page (operations.views.server_error)
            request.member = member
            request.user = member.user
        return view(request, *args, member=member, **kwargs)

    return wrapper


def layout_context(member) -> dict:
    """Context that stops the layout from querying during an outage (overrides the context processor)."""
    if isinstance(member, MemberSnapshot):
        return {"current_member": member, "other_memberships": [], "user": member.user}
    return {}


def get_campaign_for_report(member, campaign_id: object, *, using: str = "default") -> Campaign:
    """The campaign, in the member's workspace, read from `using` (a report may read the standby)."""
    return get_for_member(Campaign.objects.using(using), member=member, pk=campaign_id)
