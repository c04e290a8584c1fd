"""The tracking fast path at the WSGI level, in front of Django's middleware stack.

Opens and clicks are most of the requests an email platform serves, and each needs nothing the
middleware provides (no session, user, CSRF, messages, workspace): verify the token, look up the
cached link, buffer the event, answer. Django's stack costs several times what the tracking
itself does, so `/t/o/<token>.gif` and `/t/c/<token>/<position>` are answered here with the same
code and the same answers as analytics.tracking_views (which still serve them under Django's
test client and any server that does not use this wrapper). Everything else goes to Django.
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.core import signals

from analytics import tracking
from analytics.tracking_views import NOT_FOUND, PIXEL

logger = logging.getLogger(__name__)

OPEN = re.compile(r"/t/o/([^/]+)\.gif")
CLICK = re.compile(r"/t/c/([^/]+)/([0-9]{1,9})")
COMMON_HEADERS = [
    ("Cache-Control", "no-store, private"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
]


def _client_ip(environ) -> str:
    proxies = settings.AXES_IPWARE_PROXY_COUNT
    if proxies:
        hops = [hop.strip() for hop in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return environ.get("REMOTE_ADDR", "")


class TrackingFastPath:
    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/t/") or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.application(environ, start_response)
        opened = OPEN.fullmatch(path)
        clicked = None if opened else CLICK.fullmatch(path)
        if not opened and not clicked:
            return self.application(environ, start_response)  # Django answers (404 or slash redirect)
        # The request signals recycle database connections, as for any Django request.
        signals.request_started.send(sender=self.__class__, environ=environ)
        ua, ip = environ.get("HTTP_USER_AGENT", ""), _client_ip(environ)
        head = environ["REQUEST_METHOD"] == "HEAD"
        try:
            if opened:
                try:
                    tracking.track_open(opened.group(1), user_agent=ua, ip=ip)
                except tracking.Unavailable:
                    logger.warning("Open not recorded: its campaign is unknown while the database is down")
                return self._answer(start_response, "200 OK", [("Content-Type", "image/gif")], PIXEL, head)
            try:
                url = tracking.track_click(clicked.group(1), int(clicked.group(2)), user_agent=ua, ip=ip)
            except tracking.Unavailable:
                body = b"This link cannot be followed right now; please try again in a minute."
                headers = [("Content-Type", "text/plain"), ("Retry-After", "30")]
                return self._answer(start_response, "503 Service Unavailable", headers, body, head)
            return self._answer(
                start_response, "302 Found", [("Location", url), ("Content-Type", "text/html")], b"", head
            )
        except tracking.NotFound:
            body = NOT_FOUND.encode()
            return self._answer(start_response, "404 Not Found", [("Content-Type", "text/plain")], body, head)
        finally:
            signals.request_finished.send(sender=self.__class__)

    @staticmethod
    def _answer(start_response, status: str, headers: list, body: bytes, head: bool):
        start_response(status, [*headers, *COMMON_HEADERS, ("Content-Length", str(len(body)))])
        return [b"" if head else body]
