"""Synthetic monitoring: a probe uses Herald the way a marketer does, through the load balancer.

Every minute (a beat task) the probe signs in at SYNTHETIC_BASE_URL, loads the dashboard and,
when SYNTHETIC_SINK_DIR names an SMTP sink's store, sends itself a one-recipient campaign and
waits for it there. Each run is kept as a SyntheticCheck (each step's outcome and milliseconds)
and counted towards the dashboard availability objective, so the SLO page shows exactly when
users could not get in.

The probe signs in over HTTP at the public address, never to Django in-process: a check that
passes while both web nodes are down would be worthless. The campaign is made with the
campaigns services (the same ones the pages call) in the probe's own workspace, with its own
list, verified sender and relay (SYNTHETIC_SMTP_HOST:PORT), and sent by the real pipeline:
scheduled, snapshotted, claimed by a send worker, rendered and handed to the relay.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.senders import SenderError
from campaigns.services import CampaignError
from operations.models import SyntheticCheck
from operations.slo import sli_record

logger = logging.getLogger(__name__)

PROBE_WORKSPACE_SLUG = "synthetic-probe"
PROBE_WORKSPACE_NAME = "Synthetic probe"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PROBE_LIST_NAME = "Synthetic probe"
PROBE_RELAY_NAME = "Synthetic probe relay"
# example.com: reserved, so a probe message that escapes to a real relay reaches nobody.
PROBE_RECIPIENT = "synthetic-probe@example.com"
PROBE_SENDER = "synthetic-probe@example.com"
SUBJECT_PREFIX = "Herald synthetic check"


class StepFailed(Exception):
    """A step of the check did not see what a user would have seen; the message says what."""


@dataclass
class ProbeRun:
    base_url: str
    http: requests.Session
    timeout: float
    user: object = None
    workspace: object = None
    token: str = ""
    campaign_id: int | None = None
    steps: list[dict] = field(default_factory=list)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.base_url + path, timeout=self.timeout, allow_redirects=False, **kwargs)

    def post(self, path: str, data: dict, **kwargs) -> requests.Response:
        return self.http.post(self.base_url + path, data=data, timeout=self.timeout, allow_redirects=False, **kwargs)


def probe_password() -> str:
    """SYNTHETIC_PROBE_PASSWORD, or one derived from SECRET_KEY so that no setup is needed."""
    if settings.SYNTHETIC_PROBE_PASSWORD:
        return settings.SYNTHETIC_PROBE_PASSWORD
    return hmac.new(settings.SECRET_KEY.encode(), b"herald-synthetic-probe", hashlib.sha256).hexdigest()


def probe_account_ensure():
    """The probe's own user and workspace, so it never touches a client's data."""
    from accounts.models import Member, User, Workspace

    with transaction.atomic():
        workspace, _ = Workspace.objects.get_or_create(
            slug=PROBE_WORKSPACE_SLUG, defaults={"name": PROBE_WORKSPACE_NAME}
        )
        user = User.objects.filter(email__iexact=settings.SYNTHETIC_PROBE_EMAIL).first()
        if user is None:
            user = User.objects.create_user(email=settings.SYNTHETIC_PROBE_EMAIL, password=probe_password())
        elif not user.check_password(probe_password()):
            user.set_password(probe_password())
            user.save(update_fields=["password"])
        Member.objects.get_or_create(user=user, workspace=workspace, defaults={"role": Member.Role.OWNER})
    return user, workspace


def step_sign_in(run: ProbeRun) -> str:
    page = run.get("/accounts/login/")
    if page.status_code != 200:
        raise StepFailed(f"the sign-in page answered {page.status_code}")
    token = CSRF_FIELD.search(page.text)
    if token is None:
        raise StepFailed("the sign-in page has no form")
    answer = run.post(
        "/accounts/login/",
        {
            "csrfmiddlewaretoken": token.group(1),
            "username": settings.SYNTHETIC_PROBE_EMAIL,
            "password": probe_password(),
        },
        headers={"Referer": run.base_url + "/accounts/login/"},
    )
    if answer.status_code != 302:
        raise StepFailed(f"signing in answered {answer.status_code} instead of a redirect")
    return "signed in"


def step_dashboard(run: ProbeRun) -> str:
    page = run.get("/")
    if page.status_code != 200:
        raise StepFailed(f"the dashboard answered {page.status_code}")
    if PROBE_WORKSPACE_NAME not in page.text:
        raise StepFailed("the dashboard did not show the probe's workspace")
    return "dashboard shown"


def probe_sending_ensure(workspace, user) -> tuple[int, int]:
    """The probe's list (with its one recipient), verified sender and relay; (list id, sender id).

    Made with the apps' own services on first use, and put right when a setting changed.
    """
    from campaigns.models import Relay, Sender
    from campaigns.senders import sender_confirm, sender_confirm_token, sender_create
    from campaigns.services import relay_create, relay_update
    from subscribers.models import MailingList, Subscriber
    from subscribers.services import list_create, membership_add, subscriber_create

    mailing_list = MailingList.objects.filter(workspace=workspace, name=PROBE_LIST_NAME).first()
    if mailing_list is None:
        mailing_list = list_create(workspace_id=workspace.pk, name=PROBE_LIST_NAME, actor=user)
    subscriber = Subscriber.objects.filter(workspace=workspace, email=PROBE_RECIPIENT).first()
    if subscriber is None:
        subscriber = subscriber_create(
            workspace_id=workspace.pk, email=PROBE_RECIPIENT, list_ids=[mailing_list.pk], source="api", actor=user
        )
    membership_add(subscriber=subscriber, mailing_list=mailing_list, actor=user)
    sender = Sender.objects.filter(workspace=workspace, email=PROBE_SENDER).first()
    if sender is None:
        sender, _ = sender_create(workspace=workspace, email=PROBE_SENDER, name="Herald synthetic probe", actor=user)
    if not sender.is_verified:
        sender = sender_confirm(token=sender_confirm_token(sender=sender))
    wanted = {
        "host": settings.SYNTHETIC_SMTP_HOST,
        "port": settings.SYNTHETIC_SMTP_PORT,
        "tls_mode": Relay.TlsMode.NONE,
        "is_active": True,
    }
    relay = Relay.objects.filter(workspace=workspace, name=PROBE_RELAY_NAME).first()
    if relay is None:
        relay_create(workspace=workspace, name=PROBE_RELAY_NAME, **wanted)
    elif any(getattr(relay, field) != value for field, value in wanted.items()):
        relay_update(relay=relay, **wanted)
    return mailing_list.pk, sender.pk


def step_send_campaign(run: ProbeRun) -> str:
    """Create and schedule a one-recipient campaign to the probe address, through the services."""
    from campaigns.services import campaign_create, campaign_schedule

    list_id, sender_id = probe_sending_ensure(run.workspace, run.user)
    run.token = uuid.uuid4().hex[:16]
    campaign = campaign_create(
        workspace=run.workspace,
        actor=run.user,
        name=f"{SUBJECT_PREFIX} {run.token}",
        subject=f"{SUBJECT_PREFIX} {run.token}",
        html=f"<p>Synthetic check {run.token}: if you can read this, Herald sends.</p>",
        text=f"Synthetic check {run.token}: if you can read this, Herald sends.",
        sender_id=sender_id,
        list_ids=[list_id],
        track_opens=False,
        track_clicks=False,
    )
    campaign_schedule(campaign=campaign, actor=run.user)
    run.campaign_id = campaign.pk
    return f"campaign {campaign.pk} scheduled"


def _arrived(store, token: str, seen: set[str]) -> bool:
    for name in store.names():
        if name in seen:
            continue
        seen.add(name)
        try:
            message = store.read(name)
        except OSError:
            continue
        if token in str(message.get("Subject", "")) and PROBE_RECIPIENT in str(message.get("X-Sink-Rcpt-To", "")):
            # Ours, and only ours: the sink's store holds no more probe mail than the one being looked for.
            (store.messages_dir / name).unlink(missing_ok=True)
            return True
    return False


def step_delivered(run: ProbeRun) -> str:
    """Wait until the message is in the SMTP sink's store (the relay accepted and kept it)."""
    from common.smtp_sink import Store

    store = Store(settings.SYNTHETIC_SINK_DIR)
    deadline = time.monotonic() + settings.SYNTHETIC_SEND_TIMEOUT_SECONDS
    seen: set[str] = set()
    while True:
        if _arrived(store, run.token, seen):
            return "message received by the SMTP sink"
        if time.monotonic() >= deadline:
            _cancel_late(run.campaign_id)
            raise StepFailed(
                f"the campaign's message did not arrive within {settings.SYNTHETIC_SEND_TIMEOUT_SECONDS:g} s"
            )
        time.sleep(0.25)


def _cancel_late(campaign_id: int | None) -> None:
    """A probe campaign that missed its deadline is cancelled, so an outage leaves no backlog of them."""
    from campaigns.models import Campaign
    from campaigns.services import campaign_cancel

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is not None:
        with contextlib.suppress(CampaignError):  # it finished meanwhile
            campaign_cancel(campaign=campaign)


def check_steps() -> list[tuple[str, Callable[[ProbeRun], str]]]:
    steps = [("sign_in", step_sign_in), ("dashboard", step_dashboard)]
    if settings.SYNTHETIC_SINK_DIR:
        steps += [("send_campaign", step_send_campaign), ("delivered", step_delivered)]
    return steps


def synthetic_check_run(base_url: str | None = None) -> SyntheticCheck:
    """Run every step once, record the outcome and count it towards dashboard availability."""
    user, workspace = probe_account_ensure()
    run = ProbeRun(
        base_url=(base_url or settings.SYNTHETIC_BASE_URL).rstrip("/"),
        http=requests.Session(),
        timeout=settings.SYNTHETIC_TIMEOUT_SECONDS,
        user=user,
        workspace=workspace,
    )
    started_at, began = timezone.now(), time.monotonic()
    failed_step, error = "", ""
    for name, step in check_steps():
        step_began = time.monotonic()
        try:
            detail, ok = step(run), True
        except (StepFailed, requests.RequestException, CampaignError, SenderError, ValidationError) as problem:
            detail, ok = _describe(problem), False
        run.steps.append(
            {"name": name, "ok": ok, "ms": round((time.monotonic() - step_began) * 1000), "detail": detail}
        )
        if not ok:
            failed_step, error = name, detail
            break
    run.http.close()
    # Counted first: the SLO hears of the run even if the database cannot store its details.
    sli_record(objective="dashboard_availability", good=not failed_step)
    check = SyntheticCheck.objects.create(
        started_at=started_at,
        ok=not failed_step,
        duration_ms=round((time.monotonic() - began) * 1000),
        failed_step=failed_step,
        error=error,
        steps=run.steps,
    )
    if not check.ok:
        logger.warning("synthetic check failed", extra={"step": failed_step, "error": error})
    return check


def _describe(problem: Exception) -> str:
    if isinstance(problem, requests.ConnectionError):
        return "could not connect"
    if isinstance(problem, requests.Timeout):
        return "timed out"
    return str(problem)


def synthetic_checks_prune() -> int:
    from campaigns.models import Campaign

    cutoff = timezone.now() - timedelta(days=settings.SYNTHETIC_RETENTION_DAYS)
    deleted, _ = SyntheticCheck.objects.filter(started_at__lt=cutoff).delete()
    # The probe's own campaigns (one a minute) are kept a day: enough to look into a failed send.
    Campaign.objects.filter(
        workspace__slug=PROBE_WORKSPACE_SLUG, created_at__lt=timezone.now() - timedelta(days=1)
    ).exclude(status__in=[Campaign.Status.SENDING, Campaign.Status.SCHEDULED]).delete()
    return deleted


def synthetic_timeline(minutes: int = 120) -> dict:
    """The probe's outcome per minute over the last `minutes`, oldest first, and recent failures.

    A minute with any failed check counts as failed; a minute without a check stays unknown
    (the probe itself could not run: no worker, no beat, or no database to record it).
    """
    now = timezone.now().replace(second=0, microsecond=0)
    start = now - timedelta(minutes=minutes - 1)
    states: dict = {}
    for started_at, ok in SyntheticCheck.objects.filter(started_at__gte=start).values_list("started_at", "ok"):
        minute = started_at.replace(second=0, microsecond=0)
        states[minute] = states.get(minute, True) and ok
    timeline = []
    for offset in range(minutes):
        minute = start + timedelta(minutes=offset)
        state = states.get(minute)
        timeline.append({"minute": minute, "state": "unknown" if state is None else ("ok" if state else "failed")})
    return {
        "minutes": timeline,
        "failures": list(SyntheticCheck.objects.filter(ok=False)[:10]),
        "latest": SyntheticCheck.objects.first(),
    }
