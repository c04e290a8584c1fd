"""Health endpoints for the load balancer and operators, and the error page shown during outages."""

import hmac
import socket
import sys

from django.conf import settings
from django.db import DatabaseError, InterfaceError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from operations import health
from operations.lifecycle import is_draining


def _node() -> str:
    return settings.NODE_NAME or socket.gethostname()


@never_cache
@require_safe
def healthz(request):
    """The process is alive. No I/O: it must answer even when everything behind it is down."""
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
@require_safe
def readyz(request):
    """Should this node receive traffic? Only its own state counts, never a shared dependency:
    if the database were down every node would fail this at once and a partial outage
    (tracking redirects and cached pages still answer) would become a total one."""
    if is_draining():
        return JsonResponse({"status": "draining", "node": _node()}, status=503)
    return JsonResponse({"status": "ready", "node": _node()})


def _has_token(request, expected: str | None) -> bool:
    supplied = request.headers.get("Authorization", "")
    if not expected or not supplied.startswith("Bearer "):
        return False
    return hmac.compare_digest(supplied.removeprefix("Bearer ").encode(), expected.encode())


@never_cache
@require_safe
def health_detail(request):
    """Each component's status for operators; without the token, only the overall status."""
    report = health.check_all()
    status_code = 503 if report["status"] == health.DOWN else 200
    if not _has_token(request, settings.HEALTH_TOKEN):
        return JsonResponse({"status": report["status"]}, status=status_code)
    return JsonResponse({**report, "node": _node(), "draining": is_draining()}, status=status_code)


@never_cache
@require_safe
def metrics(request):
    """Prometheus exposition for this node, with `Authorization: Bearer $METRICS_TOKEN`."""
    if not _has_token(request, settings.METRICS_TOKEN):
        return HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
    from operations.metrics import render_metrics

    return HttpResponse(render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8")


def server_error(request):
    """handler500: a database outage gets a clear 503 page; anything else the plain 500 page.

    Neither page touches the database, the session or the user, any of which may be what failed.
    """
    exc = sys.exc_info()[1]
    if isinstance(exc, (DatabaseError, InterfaceError)):
        body = loader.get_template("errors/503.html").render({})
        response = HttpResponse(body, status=503)
        response["Retry-After"] = "5"
        return response
    return HttpResponse(loader.get_template("errors/500.html").render({}), status=500)
