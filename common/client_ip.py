"""The client's address for a request, trusting only as many proxies as TRUSTED_PROXY_COUNT says."""

from django.conf import settings


def client_ip(request) -> str | None:
    """REMOTE_ADDR, or with N trusted proxies the address the outermost of them saw.

    Each proxy appends the address it received the request from to X-Forwarded-For, so the
    N-th entry from the right was written by our own first proxy; anything left of it the
    client could have made up.
    """
    proxies = settings.NINJA_NUM_PROXIES
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or None
