"""The open pixel (/t/o/<token>.gif) and the click redirect (/t/c/<token>/<position>).

They never touch the session, the user or the ORM on the fast path (see analytics/tracking.py):
verify the signed token, find the link in the cached link table, buffer the event, answer.
Anything Herald did not sign, or a position the campaign does not have, is a 404, so the
redirect can only ever lead to a URL the campaign contained.
"""

import base64
import logging

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound, HttpResponseRedirect
from django.views.decorators.http import require_safe

from analytics import tracking

logger = logging.getLogger(__name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NOT_FOUND = "This link is not valid."


def client_ip(request) -> str:
    """The client's address: the last untrusted hop of X-Forwarded-For behind TRUSTED_PROXY_COUNT proxies."""
    proxies = settings.AXES_IPWARE_PROXY_COUNT
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def _no_store(response):
    response["Cache-Control"] = "no-store, private"
    return response


@require_safe
def open_pixel(request, token):
    try:
        tracking.track_open(token, user_agent=request.META.get("HTTP_USER_AGENT", ""), ip=client_ip(request))
    except tracking.NotFound:
        return HttpResponseNotFound(NOT_FOUND, content_type="text/plain")
    except tracking.Unavailable:
        # Nothing can check the token's campaign right now; a pixel still answers (an image is harmless).
        logger.warning("Open not recorded: campaign %s unknown while the database is down", token[:12])
    return _no_store(HttpResponse(PIXEL, content_type="image/gif"))


@require_safe
def click_redirect(request, token, position):
    try:
        url = tracking.track_click(
            token, position, user_agent=request.META.get("HTTP_USER_AGENT", ""), ip=client_ip(request)
        )
    except tracking.NotFound:
        return HttpResponseNotFound(NOT_FOUND, content_type="text/plain")
    except tracking.Unavailable:
        return _no_store(
            HttpResponse(
                "This link cannot be followed right now; please try again in a minute.",
                status=503,
                content_type="text/plain",
                headers={"Retry-After": "30"},
            )
        )
    return _no_store(HttpResponseRedirect(url))
