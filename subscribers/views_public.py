"""Public pages reached from email and from other sites: subscribe, confirm, unsubscribe, preferences.

No sign-in, no CSRF (the signed token in the URL is the authority, and the subscribe form is
embedded on other sites). The unsubscribe pages answer even while the database is down: the
request is queued and the person is told it worked (subscribers.services.unsubscribe_request).
"""

import logging
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from redis.exceptions import RedisError

from common.client_ip import client_ip
from subscribers.forms import SubscribeForm
from subscribers.models import ListMembership, MailingList, Subscriber
from subscribers.services import (
    SubscribeOutcome,
    preferences_update,
    subscription_confirm,
    subscription_request,
    unsubscribe_request,
)
from subscribers.tokens import InvalidToken, read_confirm_token, read_unsubscribe_token

logger = logging.getLogger(__name__)

PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def subscribe_rate_allowed(ip: str | None) -> bool:
    """Whether this client may post the subscribe form again; True whenever Redis cannot say."""
    from django_redis import get_redis_connection

    count, _, unit = settings.SUBSCRIBE_RATE_LIMIT.partition("/")
    period = PERIOD_SECONDS[unit]
    key = f"herald:subscribe-rate:{ip or 'unknown'}:{int(time.time() // period)}"
    try:
        redis = get_redis_connection("default")
        seen = redis.incr(key)
        if seen == 1:
            redis.expire(key, period)
    except (RedisError, OSError):
        # Fail open: losing a would-be subscriber costs more than a burst of form spam.
        return True
    return seen <= int(count)


@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def subscribe(request, token):
    mailing_list = get_object_or_404(MailingList.objects.select_related("workspace"), public_token=token)
    if not mailing_list.workspace.is_active:
        raise Http404("This form is no longer available.")
    context = {"mailing_list": mailing_list}
    if request.method == "GET":
        return render(request, "subscribers/public/subscribe.html", {**context, "form": SubscribeForm()})
    form = SubscribeForm(request.POST)
    if request.POST.get("website"):
        # A bot filled in the hidden field: answer as if it worked, do nothing.
        return render(request, "subscribers/public/subscribed.html", {**context, "outcome": "subscribed"})
    ip = client_ip(request)
    if not subscribe_rate_allowed(ip):
        return render(
            request,
            "subscribers/public/subscribe.html",
            {**context, "form": form, "rate_limited": True},
            status=429,
        )
    if not form.is_valid():
        return render(request, "subscribers/public/subscribe.html", {**context, "form": form}, status=400)
    try:
        result = subscription_request(
            mailing_list=mailing_list, email=form.cleaned_data["email"], name=form.cleaned_data["name"], ip=ip
        )
    except ValidationError as exc:
        form.add_error("email", exc.messages[0])
        return render(request, "subscribers/public/subscribe.html", {**context, "form": form}, status=400)
    status = 200
    if result.outcome == SubscribeOutcome.REFUSED:
        status = 409
    return render(
        request,
        "subscribers/public/subscribed.html",
        {**context, "outcome": result.outcome, "email_problem": result.email_problem},
        status=status,
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def confirm(request, token):
    """GET shows a button; POST confirms (mail scanners that open links must not confirm for people)."""
    try:
        subscriber_id, list_id = read_confirm_token(token)
    except InvalidToken as exc:
        return render(request, "subscribers/public/link_invalid.html", {"reason": str(exc)}, status=400)
    mailing_list = MailingList.objects.filter(pk=list_id).first()
    if request.method == "GET":
        return render(request, "subscribers/public/confirm.html", {"mailing_list": mailing_list})
    membership = subscription_confirm(subscriber_id=subscriber_id, list_id=list_id, ip=client_ip(request))
    if membership is None:
        return render(
            request,
            "subscribers/public/link_invalid.html",
            {"reason": "This subscription can no longer be confirmed."},
            status=404,
        )
    return render(request, "subscribers/public/confirmed.html", {"mailing_list": membership.mailing_list})


def _read_token_or_404(token):
    try:
        return read_unsubscribe_token(token)
    except InvalidToken:
        raise Http404("This unsubscribe link is not valid.") from None


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    """GET: a page with a confirm button. POST: unsubscribe from everything.

    RFC 8058 one-click: mail clients POST `List-Unsubscribe=One-Click` here, without cookies
    or a page; they get a bare 200.
    """
    data = _read_token_or_404(token)
    one_click = request.method == "POST" and request.POST.get("List-Unsubscribe") == "One-Click"
    if request.method == "GET":
        email = None
        try:
            subscriber = Subscriber.objects.filter(pk=data.subscriber_id, workspace_id=data.workspace_id).first()
            email = subscriber.email if subscriber else None
        except DatabaseError:
            pass  # the page still works: the button queues the request
        return render(request, "subscribers/public/unsubscribe.html", {"email": email, "token": token})
    outcome = unsubscribe_request(
        workspace_id=data.workspace_id,
        subscriber_id=data.subscriber_id,
        campaign_id=data.campaign_id,
        method="one-click (RFC 8058)" if one_click else "unsubscribe link",
        ip=client_ip(request),
    )
    if one_click:
        return HttpResponse("Unsubscribed.\n", content_type="text/plain; charset=utf-8")
    return render(request, "subscribers/public/unsubscribed.html", {"token": token, "outcome": outcome})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def preferences(request, token):
    """Which of the workspace's lists the person stays on; or leave everything."""
    data = _read_token_or_404(token)
    ip = client_ip(request)
    if request.method == "POST" and request.POST.get("everything") == "yes":
        outcome = unsubscribe_request(
            workspace_id=data.workspace_id,
            subscriber_id=data.subscriber_id,
            campaign_id=data.campaign_id,
            method="preferences page",
            ip=ip,
        )
        return render(request, "subscribers/public/unsubscribed.html", {"token": token, "outcome": outcome})
    try:
        subscriber = Subscriber.objects.filter(pk=data.subscriber_id, workspace_id=data.workspace_id).first()
        if subscriber is None:
            raise Http404("This unsubscribe link is not valid.")
        saved = False
        if request.method == "POST":
            keep = [value for value in request.POST.getlist("lists") if value.isdigit()]
            preferences_update(subscriber=subscriber, keep_list_ids=keep, ip=ip)
            saved = True
        memberships = ListMembership.objects.filter(subscriber=subscriber).select_related("mailing_list")
        memberships = list(memberships.order_by("mailing_list__name"))
    except DatabaseError:
        return render(request, "subscribers/public/preferences_unavailable.html", {"token": token}, status=503)
    return render(
        request,
        "subscribers/public/preferences.html",
        {"subscriber": subscriber, "memberships": memberships, "token": token, "saved": saved},
    )
