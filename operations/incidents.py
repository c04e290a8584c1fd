"""The public status page and incidents: component states, incident updates, subscriber emails.

Components are what clients recognise (dashboard, API, sending, tracking, imports); their state
is the worse of what the health checks show and what an open incident declares. The page must
answer during the very outages it reports, so it falls back to the incidents it last cached.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

from operations import health
from operations.models import Alert, Incident, IncidentUpdate, StatusSubscription

logger = logging.getLogger(__name__)

COMPONENTS = {
    "dashboard": "Dashboard",
    "api": "API",
    "sending": "Sending",
    "tracking": "Tracking links and opens",
    "imports": "Imports",
}
OPERATIONAL, DEGRADED, PARTIAL, MAJOR = "operational", "degraded_performance", "partial_outage", "major_outage"
STATE_LABELS = {
    OPERATIONAL: "Operational",
    DEGRADED: "Degraded performance",
    PARTIAL: "Partial outage",
    MAJOR: "Major outage",
}
_ORDER = [OPERATIONAL, DEGRADED, PARTIAL, MAJOR]
IMPACT_STATE = {"none": OPERATIONAL, "minor": DEGRADED, "major": PARTIAL, "critical": MAJOR}
INCIDENTS_CACHE_KEY = "status:open-incidents"
STATES_CACHE_KEY = "status:component-states"
SIGNING_SALT = "operations.status-subscription"


def _worse(a: str, b: str) -> str:
    return max(a, b, key=_ORDER.index)


# --- reading -------------------------------------------------------------------------------


def automatic_states() -> dict[str, str]:
    """Component states from the health checks (and the missing-workers alert), cached briefly."""
    states = cache.get(STATES_CACHE_KEY)
    if states:
        return states
    report = health.check_all()["components"]
    states = dict.fromkeys(COMPONENTS, OPERATIONAL)
    if report["database"]["status"] == health.DOWN:
        # Nothing can be saved; tracking still redirects from its buffer.
        states |= {"dashboard": MAJOR, "api": MAJOR, "sending": MAJOR, "imports": MAJOR, "tracking": DEGRADED}
    else:
        if report["redis"]["status"] == health.DOWN:
            states |= {"dashboard": DEGRADED, "api": DEGRADED, "tracking": DEGRADED}
        if report["broker"]["status"] == health.DOWN:
            states |= {"sending": PARTIAL, "imports": PARTIAL}
        try:
            if Alert.objects.filter(rule="workers_missing", status=Alert.Status.FIRING).exists():
                states |= {"sending": PARTIAL, "imports": PARTIAL}
        except DatabaseError:
            pass
    cache.set(STATES_CACHE_KEY, states, settings.STATUS_PAGE_CACHE_SECONDS)
    return states


def _serialise(incident: Incident) -> dict:
    return {
        "id": incident.pk,
        "title": incident.title,
        "impact": incident.impact,
        "impact_label": incident.get_impact_display(),
        "status": incident.status,
        "status_label": incident.get_status_display(),
        "components": incident.components,
        "started_at": incident.started_at.isoformat(),
        "updates": [
            {
                "status_label": update.get_status_display(),
                "message": update.message,
                "at": update.created_at.isoformat(),
                "estimated_resolution_at": (
                    update.estimated_resolution_at.isoformat() if update.estimated_resolution_at else None
                ),
            }
            for update in incident.updates.all()
        ],
    }


def _open_incidents() -> tuple[list[dict], float | None]:
    """Open incidents, and None; or when the database is away, the cached ones and their age."""
    try:
        incidents = [
            _serialise(incident)
            for incident in Incident.objects.exclude(status=Incident.Status.RESOLVED).prefetch_related("updates")
        ]
    except DatabaseError:
        cached = cache.get(INCIDENTS_CACHE_KEY)
        if cached is None:
            return [], None
        return cached["incidents"], (timezone.now().timestamp() - cached["at"])
    cache.set(INCIDENTS_CACHE_KEY, {"incidents": incidents, "at": timezone.now().timestamp()}, None)
    return incidents, None


@dataclass
class StatusOverview:
    components: list[dict]
    overall: str
    incidents: list[dict]
    incidents_age_s: float | None  # set when the incidents shown are cached, not live


def status_overview() -> StatusOverview:
    states = automatic_states()
    incidents, age = _open_incidents()
    for incident in incidents:
        for key in incident["components"]:
            if key in states:
                states[key] = _worse(states[key], IMPACT_STATE[incident["impact"]])
    components = [
        {"key": key, "name": name, "state": states[key], "label": STATE_LABELS[states[key]]}
        for key, name in COMPONENTS.items()
    ]
    overall = OPERATIONAL
    for state in states.values():
        overall = _worse(overall, state)
    return StatusOverview(components, overall, incidents, age)


# --- writing -------------------------------------------------------------------------------


def _validate(*, title: str | None = None, components: list[str] | None = None, message: str | None = None) -> None:
    if title is not None and not title.strip():
        raise ValidationError({"title": "An incident needs a title."})
    if components is not None:
        unknown = sorted(set(components) - set(COMPONENTS))
        if unknown or not components:
            raise ValidationError({"components": f"Choose affected components among {', '.join(COMPONENTS)}."})
    if message is not None and not message.strip():
        raise ValidationError({"message": "Say what is happening: the update needs a message."})


def _after_change(update: IncidentUpdate) -> None:
    cache.delete(INCIDENTS_CACHE_KEY)
    from operations.tasks import notify_status_subscribers

    transaction.on_commit(lambda: notify_status_subscribers.delay(update.pk))


@transaction.atomic
def incident_open(
    *, title: str, impact: str, components: list[str], message: str, by: str, estimated_resolution_at=None
) -> Incident:
    _validate(title=title, components=components, message=message)
    incident = Incident.objects.create(
        title=title.strip(), impact=impact, components=components, started_at=timezone.now(), created_by=by
    )
    update = IncidentUpdate.objects.create(
        incident=incident,
        status=incident.status,
        message=message.strip(),
        estimated_resolution_at=estimated_resolution_at,
        posted_by=by,
    )
    _after_change(update)
    return incident


@transaction.atomic
def incident_post_update(
    *, incident: Incident, status: str, message: str, by: str, estimated_resolution_at=None
) -> IncidentUpdate:
    _validate(message=message)
    if incident.status == Incident.Status.RESOLVED:
        raise ValidationError("This incident is resolved; open a new one if the problem is back.")
    if status == Incident.Status.RESOLVED:
        raise ValidationError("Use Resolve, which asks for the post-incident summary.")
    incident.status = status
    incident.save(update_fields=["status", "updated_at"])
    update = IncidentUpdate.objects.create(
        incident=incident,
        status=status,
        message=message.strip(),
        estimated_resolution_at=estimated_resolution_at,
        posted_by=by,
    )
    _after_change(update)
    return update


@transaction.atomic
def incident_resolve(*, incident: Incident, message: str, postmortem: str, by: str) -> IncidentUpdate:
    _validate(message=message)
    if incident.status == Incident.Status.RESOLVED:
        raise ValidationError("This incident is already resolved.")
    incident.status, incident.resolved_at, incident.postmortem = Incident.Status.RESOLVED, timezone.now(), postmortem
    incident.save(update_fields=["status", "resolved_at", "postmortem", "updated_at"])
    update = IncidentUpdate.objects.create(
        incident=incident, status=Incident.Status.RESOLVED, message=message.strip(), posted_by=by
    )
    _after_change(update)
    return update


# --- subscribers ---------------------------------------------------------------------------


def _link(view_name: str, email: str) -> str:
    token = signing.dumps(email.lower(), salt=SIGNING_SALT)
    return settings.SITE_URL + reverse(view_name, args=[token])


def email_from_token(token: str, *, max_age: float | None = None) -> str | None:
    try:
        return signing.loads(token, salt=SIGNING_SALT, max_age=max_age)
    except signing.BadSignature:
        return None


def status_subscribe(*, email: str) -> StatusSubscription:
    """Record the address and send it a confirmation link; updates start once it is confirmed."""
    subscription, _ = StatusSubscription.objects.get_or_create(email=email.strip().lower())
    if subscription.confirmed_at is None:
        EmailMessage(
            f"Confirm updates from {settings.STATUS_PAGE_TITLE}",
            "Someone (hopefully you) asked to receive incident updates by email.\n\n"
            f"Confirm: {_link('operations:status_confirm', subscription.email)}\n\n"
            "If it was not you, ignore this message: nothing will be sent.",
            to=[subscription.email],
        ).send()
    return subscription


def status_confirm(*, token: str) -> StatusSubscription | None:
    email = email_from_token(token, max_age=7 * 24 * 3600)
    subscription = StatusSubscription.objects.filter(email=email).first() if email else None
    if subscription and subscription.confirmed_at is None:
        subscription.confirmed_at = timezone.now()
        subscription.save(update_fields=["confirmed_at", "updated_at"])
    return subscription


def status_unsubscribe(*, token: str) -> bool:
    email = email_from_token(token)
    return bool(email) and StatusSubscription.objects.filter(email=email).delete()[0] > 0


def status_subscribers_notify(*, update: IncidentUpdate) -> int:
    """Email one incident update to every confirmed subscriber over one SMTP connection."""
    incident = update.incident
    subject = f"[{update.get_status_display()}] {incident.title}"
    eta = (
        f"\nEstimated resolution: {update.estimated_resolution_at:%Y-%m-%d %H:%M %Z}"
        if update.estimated_resolution_at
        else ""
    )
    affected = ", ".join(COMPONENTS.get(key, key) for key in incident.components)
    messages = [
        EmailMessage(
            subject,
            f"{update.message}\n{eta}\nAffected: {affected}\nImpact: {incident.get_impact_display()}\n"
            + (f"\nSummary:\n{incident.postmortem}\n" if incident.postmortem else "")
            + f"\nStatus page: {settings.SITE_URL}{reverse('operations:status')}\n"
            f"Stop these emails: {_link('operations:status_unsubscribe', subscription.email)}\n",
            to=[subscription.email],
        )
        for subscription in StatusSubscription.objects.filter(confirmed_at__isnull=False)
    ]
    if not messages:
        return 0
    with get_connection() as connection:
        return connection.send_messages(messages)
