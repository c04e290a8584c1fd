"""Synthetic monitoring: a probe uses Herald the way a marketer does, through the load balancer.

Every minute (a beat task) the probe signs in at SYNTHETIC_BASE_URL, loads the dashboard and,
where a sending check is available, sends itself a one-recipient campaign and waits for it in
the probe mailbox. Each run is kept as a SyntheticCheck and counted towards the dashboard
availability objective, so the SLO page shows exactly when users could not get in.

The probe talks HTTP to the public address, never to Django in-process: a check that passes
while both web nodes are down would be worthless.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from operations.models import SyntheticCheck
from operations.slo import sli_record

logger = logging.getLogger(__name__)

PROBE_WORKSPACE_SLUG = "synthetic-probe"
PROBE_WORKSPACE_NAME = "Synthetic probe"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class StepFailed(Exception):
    """A step of the check did not see what a user would have seen; the message says what."""


@dataclass
class ProbeRun:
    base_url: str
    http: requests.Session
    timeout: float
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


def check_steps() -> list[tuple[str, Callable[[ProbeRun], str]]]:
    return [("sign_in", step_sign_in), ("dashboard", step_dashboard)]


def synthetic_check_run(base_url: str | None = None) -> SyntheticCheck:
    """Run every step once, record the outcome and count it towards dashboard availability."""
    probe_account_ensure()
    run = ProbeRun(
        base_url=(base_url or settings.SYNTHETIC_BASE_URL).rstrip("/"),
        http=requests.Session(),
        timeout=settings.SYNTHETIC_TIMEOUT_SECONDS,
    )
    started_at, began = timezone.now(), time.monotonic()
    failed_step, error = "", ""
    for name, step in check_steps():
        step_began = time.monotonic()
        try:
            detail, ok = step(run), True
        except (StepFailed, requests.RequestException) as problem:
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
    cutoff = timezone.now() - timedelta(days=settings.SYNTHETIC_RETENTION_DAYS)
    deleted, _ = SyntheticCheck.objects.filter(started_at__lt=cutoff).delete()
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
