"""How django-axes names the account behind a sign-in attempt."""

from django.conf import settings


def username_for_lockout(request, credentials) -> str | None:
    """The address as typed, lower-cased, so "Alice@" and "alice@" count as one account's failures."""
    field = settings.AXES_USERNAME_FORM_FIELD
    username = (credentials or {}).get(field) or request.POST.get(field)
    return username.strip().lower() if username else None
