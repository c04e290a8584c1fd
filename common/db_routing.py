"""Report reads go to the standby (alias `replica`); a client that has just written reads the primary.

The standby replays the primary's changes a little behind it, so a user who saves something
and then opens a report could miss their own change. After a request writes (any ORM write,
or any unsafe method), the response sets a short-lived cookie, and for DATABASE_PIN_SECONDS
every read of that browser goes to the primary. Only models of the apps in
DATABASE_REPLICA_APPS read from the standby; everything else always reads the primary.
Without DATABASE_REPLICA_URL there is no `replica` alias and everything uses the primary.
"""

from __future__ import annotations

import contextvars
import time

from django.conf import settings

REPLICA = "replica"
PIN_COOKIE = "herald_db_pin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# Per request (gunicorn's threads each run one request at a time; the middleware resets both).
_pinned = contextvars.ContextVar("herald_db_pinned", default=False)
_wrote = contextvars.ContextVar("herald_db_wrote", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        if not replica_configured() or _pinned.get() or _wrote.get():
            return "default"
        if model._meta.app_label in settings.DATABASE_REPLICA_APPS:
            return REPLICA
        return "default"

    def db_for_write(self, model, **hints):
        _wrote.set(True)
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        # Both aliases hold the same data.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # The standby is a copy of the primary: migrations run there, never on it.
        return False if db == REPLICA else None


def pinned_until(request) -> float:
    try:
        return float(request.COOKIES.get(PIN_COOKIE, "0"))
    except ValueError:
        return 0.0


class ReplicaPinningMiddleware:
    """Sends a browser's reads to the primary for a few seconds after it wrote."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        unsafe = request.method not in SAFE_METHODS
        pinned = _pinned.set(unsafe or pinned_until(request) > time.time())
        wrote = _wrote.set(False)
        try:
            response = self.get_response(request)
            if (unsafe or _wrote.get()) and replica_configured():
                seconds = settings.DATABASE_PIN_SECONDS
                # Forging the cookie only sends one's own reads to the primary: nothing to sign.
                response.set_cookie(
                    PIN_COOKIE,
                    f"{time.time() + seconds:.3f}",
                    max_age=max(1, int(seconds)),
                    httponly=True,
                    samesite="Lax",
                    secure=settings.SESSION_COOKIE_SECURE,
                )
            return response
        finally:
            _pinned.reset(pinned)
            _wrote.reset(wrote)
