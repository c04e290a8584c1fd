"""Writes of the campaigns app: templates, campaigns and their lifecycle, relays.

Lifecycle: draft -> scheduled -> sending -> sent, with paused (from sending) and cancelled
(from scheduled, sending or paused). Every transition is a conditional UPDATE of the status,
so two clicks, a retried API call and the beat scheduler racing each other apply it once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Workspace
from campaigns import selectors, sending
from campaigns.lib.rendering import TemplateProblem, check_template
from campaigns.models import Campaign, Relay, Sender, Template
from campaigns.relays import has_usable_relay
from subscribers.models import MailingList, Segment


class CampaignError(Exception):
    """A request the campaign's state or content does not allow, with a reason for the marketer."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def content_check(*, workspace_id: int, subject: str, preheader: str, html: str, text: str) -> None:
    """Refuse content that cannot be rendered (syntax, unknown fields, sandbox escapes)."""
    try:
        check_template(
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            attribute_keys=selectors.workspace_attribute_keys(workspace_id=workspace_id),
        )
    except TemplateProblem as problem:
        where = f" (line {problem.line})" if getattr(problem, "line", None) else ""
        raise CampaignError(f"{problem.message}{where}", field=getattr(problem, "field", None) or "html") from None


# --- Templates -------------------------------------------------------------------------------


TEMPLATE_FIELDS = ("name", "subject", "preheader", "html", "text")


def template_create(
    *, workspace: Workspace, actor, name: str, subject: str = "", preheader: str = "", html: str = "", text: str = ""
) -> Template:
    name = name.strip()
    if not name:
        raise CampaignError("A template needs a name.", field="name")
    content_check(workspace_id=workspace.pk, subject=subject, preheader=preheader, html=html, text=text)
    with transaction.atomic():
        if Template.objects.filter(workspace=workspace, name=name).exists():
            raise CampaignError("Another template already has this name.", field="name")
        return Template.objects.create(
            workspace=workspace,
            name=name,
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            created_by=actor if getattr(actor, "pk", None) else None,
        )


def template_update(*, template: Template, **changes) -> Template:
    unknown = set(changes) - set(TEMPLATE_FIELDS)
    if unknown:
        raise CampaignError(f"Unknown template fields: {', '.join(sorted(unknown))}.")
    merged = {field: changes.get(field, getattr(template, field)) for field in TEMPLATE_FIELDS}
    merged["name"] = (merged["name"] or "").strip()
    if not merged["name"]:
        raise CampaignError("A template needs a name.", field="name")
    content_check(
        workspace_id=template.workspace_id,
        subject=merged["subject"],
        preheader=merged["preheader"],
        html=merged["html"],
        text=merged["text"],
    )
    with transaction.atomic():
        clash = Template.objects.filter(workspace_id=template.workspace_id, name=merged["name"]).exclude(pk=template.pk)
        if clash.exists():
            raise CampaignError("Another template already has this name.", field="name")
        for field, value in merged.items():
            setattr(template, field, value)
        template.save(update_fields=[*TEMPLATE_FIELDS, "updated_at"])
    return template


def template_delete(*, template: Template) -> None:
    # Campaigns keep their own copy of the content; their link to the template is cleared.
    template.delete()


# --- Campaigns: drafts ----------------------------------------------------------------------

CAMPAIGN_FIELDS = (
    "name",
    "subject",
    "preheader",
    "html",
    "text",
    "reply_to",
    "track_opens",
    "track_clicks",
    "rate_limit_per_second",
)


def _audience_objects(
    *, workspace_id: int, list_ids: Iterable[int], exclude_list_ids: Iterable[int], segment_id: int | None
):
    list_ids, exclude_list_ids = sorted(set(list_ids)), sorted(set(exclude_list_ids))
    lists = list(MailingList.objects.filter(workspace_id=workspace_id, pk__in=list_ids))
    excluded = list(MailingList.objects.filter(workspace_id=workspace_id, pk__in=exclude_list_ids))
    if len(lists) != len(list_ids) or len(excluded) != len(exclude_list_ids):
        raise CampaignError("One of the chosen lists does not exist in this workspace.", field="lists")
    segment = None
    if segment_id is not None:
        segment = Segment.objects.filter(workspace_id=workspace_id, pk=segment_id).first()
        if segment is None:
            raise CampaignError("The chosen segment does not exist in this workspace.", field="segment")
    return lists, excluded, segment


def _sender_object(*, workspace_id: int, sender_id: int | None) -> Sender | None:
    if sender_id is None:
        return None
    sender = Sender.objects.filter(workspace_id=workspace_id, pk=sender_id).first()
    if sender is None:
        raise CampaignError("The chosen sender does not exist in this workspace.", field="sender")
    return sender


def _check_fields(values: dict) -> None:
    if not (values.get("name") or "").strip():
        raise CampaignError("A campaign needs a name.", field="name")
    if not (values.get("subject") or "").strip():
        raise CampaignError("A campaign needs a subject.", field="subject")
    rate = values.get("rate_limit_per_second")
    if rate is not None and (not isinstance(rate, int) or rate < 1):
        raise CampaignError("The rate limit must be a whole number of messages per second, at least 1.")


def campaign_create(
    *,
    workspace: Workspace,
    actor,
    name: str,
    template: Template | None = None,
    subject: str | None = None,
    preheader: str | None = None,
    html: str | None = None,
    text: str | None = None,
    sender_id: int | None = None,
    reply_to: str = "",
    list_ids: Iterable[int] = (),
    exclude_list_ids: Iterable[int] = (),
    segment_id: int | None = None,
    rate_limit_per_second: int | None = None,
    track_opens: bool = True,
    track_clicks: bool = True,
) -> Campaign:
    """A draft; the template's content is copied in (fields given explicitly win)."""
    if template is not None and template.workspace_id != workspace.pk:
        raise CampaignError("The chosen template does not exist in this workspace.", field="template")
    values = {
        "name": (name or "").strip(),
        "subject": subject if subject is not None else (template.subject if template else ""),
        "preheader": preheader if preheader is not None else (template.preheader if template else ""),
        "html": html if html is not None else (template.html if template else ""),
        "text": text if text is not None else (template.text if template else ""),
        "reply_to": (reply_to or "").strip(),
        "track_opens": track_opens,
        "track_clicks": track_clicks,
        "rate_limit_per_second": rate_limit_per_second,
    }
    _check_fields(values)
    content_check(
        workspace_id=workspace.pk,
        subject=values["subject"],
        preheader=values["preheader"],
        html=values["html"],
        text=values["text"],
    )
    sender = _sender_object(workspace_id=workspace.pk, sender_id=sender_id)
    lists, excluded, segment = _audience_objects(
        workspace_id=workspace.pk, list_ids=list_ids, exclude_list_ids=exclude_list_ids, segment_id=segment_id
    )
    with transaction.atomic():
        campaign = Campaign.objects.create(
            workspace=workspace,
            template=template,
            sender=sender,
            segment=segment,
            created_by=actor if getattr(actor, "pk", None) else None,
            **values,
        )
        campaign.lists.set(lists)
        campaign.exclude_lists.set(excluded)
    return campaign


_UNSET = object()


def campaign_update(
    *,
    campaign: Campaign,
    sender_id: object = _UNSET,
    list_ids: object = _UNSET,
    exclude_list_ids: object = _UNSET,
    segment_id: object = _UNSET,
    **changes,
) -> Campaign:
    """Change a draft; anything else is refused (a scheduled or sent campaign is fixed)."""
    unknown = set(changes) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise CampaignError(f"Unknown campaign fields: {', '.join(sorted(unknown))}.")
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignError(f"Only a draft can be edited; this campaign is {campaign.get_status_display().lower()}.")
    values = {field: changes.get(field, getattr(campaign, field)) for field in CAMPAIGN_FIELDS}
    values["name"] = (values["name"] or "").strip()
    values["reply_to"] = (values["reply_to"] or "").strip()
    _check_fields(values)
    content_check(
        workspace_id=campaign.workspace_id,
        subject=values["subject"],
        preheader=values["preheader"],
        html=values["html"],
        text=values["text"],
    )
    sender = campaign.sender
    if sender_id is not _UNSET:
        sender = _sender_object(workspace_id=campaign.workspace_id, sender_id=sender_id)
    lists, excluded, segment = _audience_objects(
        workspace_id=campaign.workspace_id,
        list_ids=campaign.lists.values_list("pk", flat=True) if list_ids is _UNSET else list_ids,
        exclude_list_ids=(
            campaign.exclude_lists.values_list("pk", flat=True) if exclude_list_ids is _UNSET else exclude_list_ids
        ),
        segment_id=campaign.segment_id if segment_id is _UNSET else segment_id,
    )
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != Campaign.Status.DRAFT:
            raise CampaignError("Only a draft can be edited; this campaign has just left draft.")
        for field, value in values.items():
            setattr(campaign, field, value)
        campaign.sender, campaign.segment = sender, segment
        campaign.save(update_fields=[*CAMPAIGN_FIELDS, "sender", "segment", "updated_at"])
        campaign.lists.set(lists)
        campaign.exclude_lists.set(excluded)
    return campaign


def campaign_duplicate(*, campaign: Campaign, actor) -> Campaign:
    """A new draft with the same content and audience."""
    with transaction.atomic():
        copy = Campaign.objects.create(
            workspace_id=campaign.workspace_id,
            name=f"Copy of {campaign.name}"[:200],
            template=campaign.template,
            sender=campaign.sender,
            segment=campaign.segment,
            created_by=actor if getattr(actor, "pk", None) else None,
            **{field: getattr(campaign, field) for field in CAMPAIGN_FIELDS if field != "name"},
        )
        copy.lists.set(campaign.lists.all())
        copy.exclude_lists.set(campaign.exclude_lists.all())
    return copy


def campaign_delete(*, campaign: Campaign) -> None:
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignError("Only a draft can be deleted; cancel the campaign instead.")
    campaign.delete()


# --- Campaigns: lifecycle -------------------------------------------------------------------


def campaign_send_problems(*, campaign: Campaign) -> list[str]:
    """Why the campaign cannot be scheduled now; empty when it can."""
    problems = []
    if campaign.sender is None:
        problems.append("Choose a sender (a From address).")
    elif not campaign.sender.is_verified:
        problems.append(f"The sender {campaign.sender.email} is not verified yet.")
    if not has_usable_relay(workspace_id=campaign.workspace_id):
        problems.append("No SMTP relay is configured: add one on the relays page.")
    if selectors.campaign_audience_count(campaign=campaign) == 0:
        problems.append("The audience is empty: no subscriber on the chosen lists or segment can be mailed.")
    return problems


def campaign_schedule(*, campaign: Campaign, send_at: datetime | None = None, actor=None) -> Campaign:
    """Schedule a draft for `send_at` (now when None); refused with reasons if it cannot send."""
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignError(f"Only a draft can be scheduled; this campaign is {campaign.get_status_display().lower()}.")
    now = timezone.now()
    if send_at is not None and timezone.is_naive(send_at):
        raise CampaignError("The send time needs a time zone.", field="send_at")
    if send_at is not None and send_at < now - timedelta(minutes=1):
        raise CampaignError("The send time is in the past.", field="send_at")
    problems = campaign_send_problems(campaign=campaign)
    if problems:
        raise CampaignError(" ".join(problems))
    send_at = send_at or now
    with transaction.atomic():
        moved = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.DRAFT).update(
            status=Campaign.Status.SCHEDULED, send_at=send_at, updated_at=now
        )
        if not moved:
            raise CampaignError("This campaign has just left draft.")
        if send_at <= now:
            transaction.on_commit(lambda: _queue_start(campaign.pk))
    campaign.refresh_from_db()
    return campaign


def _queue_start(campaign_id: int) -> None:
    from campaigns.tasks import start_campaign

    # With the broker away the beat scheduler starts it within seconds instead.
    with contextlib.suppress(Exception):
        start_campaign.apply_async(args=[campaign_id], queue="send")


def campaign_unschedule(*, campaign: Campaign) -> Campaign:
    """Back to draft, before its time comes."""
    moved = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SCHEDULED).update(
        status=Campaign.Status.DRAFT, send_at=None, updated_at=timezone.now()
    )
    if not moved:
        raise CampaignError("Only a scheduled campaign that has not started can go back to draft.")
    campaign.refresh_from_db()
    return campaign


def campaigns_due() -> list[int]:
    return list(
        Campaign.objects.filter(status=Campaign.Status.SCHEDULED, send_at__lte=timezone.now())
        .order_by("send_at")
        .values_list("pk", flat=True)[:100]
    )


def campaign_start(*, campaign_id: int) -> bool:
    """Snapshot the audience into the ledger and move a due campaign to sending.

    One transaction holds the row lock, the snapshot and the status change, so a start cut off
    half-way leaves a scheduled campaign and no ledger rows; running it twice starts it once.
    """
    now = timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .filter(pk=campaign_id, status=Campaign.Status.SCHEDULED, send_at__lte=now)
            .first()
        )
        if campaign is None:
            return False
        sending.deliveries_snapshot(campaign=campaign)
        sending.campaign_links_store(campaign=campaign)
        campaign.recipient_count = campaign.deliveries.count()
        campaign.started_at = now
        if campaign.recipient_count:
            campaign.status = Campaign.Status.SENDING
        else:
            # Everyone left the audience since scheduling: nothing to send.
            campaign.status, campaign.finished_at = Campaign.Status.SENT, now
        campaign.save(update_fields=["recipient_count", "started_at", "status", "finished_at", "updated_at"])
        if campaign.status == Campaign.Status.SENDING:
            transaction.on_commit(lambda: _dispatch(campaign_id))
    return True


def _dispatch(campaign_id: int) -> None:
    # The sweeper re-dispatches every sending campaign if this fails.
    with contextlib.suppress(Exception):
        sending.dispatch(campaign_id=campaign_id)


def campaign_pause(*, campaign: Campaign, reason: str = "", actor=None) -> Campaign:
    """Stop sending within seconds; batches in flight hand their unsent rows back."""
    now = timezone.now()
    moved = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
        status=Campaign.Status.PAUSED, paused_at=now, pause_reason=reason[:500], updated_at=now
    )
    if not moved:
        raise CampaignError("Only a campaign that is sending can be paused.")
    campaign.refresh_from_db()
    return campaign


def campaign_resume(*, campaign: Campaign, actor=None) -> Campaign:
    moved = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.PAUSED).update(
        status=Campaign.Status.SENDING, paused_at=None, pause_reason="", updated_at=timezone.now()
    )
    if not moved:
        raise CampaignError("Only a paused campaign can be resumed.")
    transaction.on_commit(lambda: _dispatch(campaign.pk))
    campaign.refresh_from_db()
    return campaign


def campaign_cancel(*, campaign: Campaign, actor=None) -> Campaign:
    """Stop for good: rows not yet sent are marked cancelled (batches in flight stop within seconds)."""
    now = timezone.now()
    with transaction.atomic():
        moved = Campaign.objects.filter(
            pk=campaign.pk, status__in=[Campaign.Status.SCHEDULED, Campaign.Status.SENDING, Campaign.Status.PAUSED]
        ).update(status=Campaign.Status.CANCELLED, finished_at=now, updated_at=now)
        if not moved:
            raise CampaignError("Only a scheduled, sending or paused campaign can be cancelled.")
        sending.deliveries_cancel_pending(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


# --- Relays ------------------------------------------------------------------------------

RELAY_FIELDS = (
    "name",
    "host",
    "port",
    "tls_mode",
    "username",
    "password",
    "priority",
    "weight",
    "max_per_second",
    "max_connections",
    "is_active",
)


def relay_create(*, workspace: Workspace | None, **fields) -> Relay:
    unknown = set(fields) - set(RELAY_FIELDS)
    if unknown:
        raise CampaignError(f"Unknown relay fields: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        return Relay.objects.create(workspace=workspace, **fields)


def relay_update(*, relay: Relay, **fields) -> Relay:
    """Change a relay; an empty password keeps the stored one."""
    unknown = set(fields) - set(RELAY_FIELDS)
    if unknown:
        raise CampaignError(f"Unknown relay fields: {', '.join(sorted(unknown))}.")
    if not fields.get("password"):
        fields.pop("password", None)
    for field, value in fields.items():
        setattr(relay, field, value)
    # Settings changed: give the relay a fresh chance rather than keep an old verdict.
    relay.circuit_state, relay.circuit_failures, relay.circuit_opened_at = Relay.Circuit.CLOSED, 0, None
    with transaction.atomic():
        relay.save()
    return relay


def relay_delete(*, relay: Relay) -> None:
    relay.delete()
