"""JSON API of the campaigns app: templates, campaigns and their lifecycle, transactional sends.

Every object is loaded through campaigns/access.py with the API key standing in for a member
(404 outside its workspace, 403 for a read-only key on writes). POSTs that create something
honour `Idempotency-Key` (accounts.api.idempotent).
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import EmailStr, Field

from accounts.access import require_write
from accounts.api import idempotent
from campaigns import selectors, services, transactional
from campaigns.access import (
    get_campaign_for_member,
    get_sender_for_member,
    get_template_for_member,
    get_transactional_message_for_member,
)
from campaigns.models import Campaign, Template
from campaigns.relays import has_usable_relay

router = Router(tags=["campaigns"])


def _guard(load):
    """Run an access helper, answering the API's 403/404 instead of an HTML page."""
    try:
        return load()
    except PermissionDenied as denied:
        raise HttpError(403, str(denied) or "This API key is read-only.") from None
    except Http404:
        raise HttpError(404, "Not found in this workspace.") from None


def _write(request) -> None:
    _guard(lambda: require_write(request.auth))


def _problem(error: services.CampaignError, status: int = 400):
    return HttpError(status, error.message)


# --- Templates ---------------------------------------------------------------------------------


class TemplateIn(Schema):
    name: str = Field(max_length=120)
    subject: str = Field("", max_length=500)
    preheader: str = Field("", max_length=500)
    html: str = ""
    text: str = ""


class TemplatePatch(Schema):
    name: str | None = Field(None, max_length=120)
    subject: str | None = Field(None, max_length=500)
    preheader: str | None = Field(None, max_length=500)
    html: str | None = None
    text: str | None = None


class TemplateOut(Schema):
    id: int
    name: str
    subject: str
    preheader: str
    html: str
    text: str
    created_at: datetime
    updated_at: datetime


def _template_out(template: Template) -> dict:
    return TemplateOut.from_orm(template).dict()


@router.get("/templates", response=list[TemplateOut], summary="The workspace's templates")
def template_list(request, limit: int = 50, offset: int = 0):
    limit = max(1, min(limit, 200))
    return list(Template.objects.filter(workspace_id=request.auth.workspace_id).order_by("id")[offset : offset + limit])


@router.post("/templates", response={201: TemplateOut}, summary="Create a template (checked before it is saved)")
def template_create(request, payload: TemplateIn):
    _write(request)

    def compute():
        try:
            template = services.template_create(workspace=request.auth.workspace, actor=None, **payload.dict())
        except services.CampaignError as error:
            raise _problem(error) from None
        return 201, _template_out(template)

    return Status(*idempotent(request, compute))


@router.get("/templates/{template_id}", response=TemplateOut, summary="One template")
def template_detail(request, template_id: int):
    return _guard(lambda: get_template_for_member(request.auth, template_id))


@router.patch("/templates/{template_id}", response=TemplateOut, summary="Change a template")
def template_update(request, template_id: int, payload: TemplatePatch):
    template = _guard(lambda: get_template_for_member(request.auth, template_id, write=True))
    try:
        return services.template_update(template=template, **payload.dict(exclude_none=True))
    except services.CampaignError as error:
        raise _problem(error) from None


@router.delete("/templates/{template_id}", response={204: None}, summary="Delete a template")
def template_delete(request, template_id: int):
    template = _guard(lambda: get_template_for_member(request.auth, template_id, write=True))
    services.template_delete(template=template)
    return Status(204, None)


# --- Campaigns --------------------------------------------------------------------------------


class CampaignIn(Schema):
    name: str = Field(max_length=200)
    template_id: int | None = None
    subject: str | None = Field(None, max_length=500)
    preheader: str | None = Field(None, max_length=500)
    html: str | None = None
    text: str | None = None
    sender_id: int | None = None
    reply_to: EmailStr | None = None
    list_ids: list[int] = []
    exclude_list_ids: list[int] = []
    segment_id: int | None = None
    rate_limit_per_second: int | None = Field(None, ge=1)
    track_opens: bool = True
    track_clicks: bool = True


class CampaignPatch(Schema):
    name: str | None = Field(None, max_length=200)
    subject: str | None = Field(None, max_length=500)
    preheader: str | None = Field(None, max_length=500)
    html: str | None = None
    text: str | None = None
    sender_id: int | None = None
    reply_to: EmailStr | None = None
    list_ids: list[int] | None = None
    exclude_list_ids: list[int] | None = None
    segment_id: int | None = None
    rate_limit_per_second: int | None = Field(None, ge=1)
    track_opens: bool | None = None
    track_clicks: bool | None = None


class ScheduleIn(Schema):
    send_at: datetime | None = None


def _campaign_out(campaign: Campaign) -> dict:
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "subject": campaign.subject,
        "preheader": campaign.preheader,
        "html": campaign.html,
        "text": campaign.text,
        "template_id": campaign.template_id,
        "sender_id": campaign.sender_id,
        "reply_to": campaign.reply_to,
        "list_ids": sorted(campaign.lists.values_list("pk", flat=True)),
        "exclude_list_ids": sorted(campaign.exclude_lists.values_list("pk", flat=True)),
        "segment_id": campaign.segment_id,
        "rate_limit_per_second": campaign.rate_limit_per_second,
        "track_opens": campaign.track_opens,
        "track_clicks": campaign.track_clicks,
        "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
        "created_at": campaign.created_at.isoformat(),
        "progress": selectors.campaign_progress(campaign=campaign),
    }


@router.get("/campaigns", summary="The workspace's campaigns, newest first")
def campaign_list(request, status: str | None = None, limit: int = 50, offset: int = 0):
    limit = max(1, min(limit, 200))
    campaigns = selectors.campaigns_for_workspace(workspace_id=request.auth.workspace_id)
    if status:
        campaigns = campaigns.filter(status=status)
    return [
        {"id": c.pk, "name": c.name, "status": c.status, "progress": selectors.campaign_progress(campaign=c)}
        for c in campaigns[offset : offset + limit]
    ]


@router.post("/campaigns", response={201: dict}, summary="Create a draft campaign")
def campaign_create(request, payload: CampaignIn):
    _write(request)
    data = payload.dict()
    template_id = data.pop("template_id")

    def compute():
        template = _guard(lambda: get_template_for_member(request.auth, template_id)) if template_id else None
        try:
            campaign = services.campaign_create(
                workspace=request.auth.workspace,
                actor=None,
                template=template,
                **{**data, "reply_to": data["reply_to"] or ""},
            )
        except services.CampaignError as error:
            raise _problem(error) from None
        return 201, _campaign_out(campaign)

    return Status(*idempotent(request, compute))


@router.get("/campaigns/{campaign_id}", summary="One campaign with live counts")
def campaign_detail(request, campaign_id: int):
    return _campaign_out(_guard(lambda: get_campaign_for_member(request.auth, campaign_id)))


@router.patch("/campaigns/{campaign_id}", summary="Change a draft campaign")
def campaign_update(request, campaign_id: int, payload: CampaignPatch):
    campaign = _guard(lambda: get_campaign_for_member(request.auth, campaign_id, write=True))
    changes = payload.dict(exclude_unset=True)
    if "reply_to" in changes:
        changes["reply_to"] = changes["reply_to"] or ""
    for key in ("list_ids", "exclude_list_ids"):
        if key in changes and changes[key] is None:
            changes[key] = []
    try:
        services.campaign_update(campaign=campaign, **changes)
    except services.CampaignError as error:
        raise _problem(error, 409 if campaign.status != Campaign.Status.DRAFT else 400) from None
    return _campaign_out(campaign)


def _lifecycle(request, campaign_id: int, apply) -> dict:
    campaign = _guard(lambda: get_campaign_for_member(request.auth, campaign_id, write=True))
    try:
        with transaction.atomic():
            campaign = apply(campaign)
    except services.CampaignError as error:
        raise _problem(error, 409) from None
    return _campaign_out(campaign)


@router.post("/campaigns/{campaign_id}/schedule", summary="Schedule a draft (send now without send_at)")
def campaign_schedule(request, campaign_id: int, payload: ScheduleIn | None = None):
    send_at = payload.send_at if payload else None
    return _lifecycle(request, campaign_id, lambda c: services.campaign_schedule(campaign=c, send_at=send_at))


@router.post("/campaigns/{campaign_id}/pause", summary="Pause a sending campaign")
def campaign_pause(request, campaign_id: int):
    return _lifecycle(
        request, campaign_id, lambda c: services.campaign_pause(campaign=c, reason="Paused through the API")
    )


@router.post("/campaigns/{campaign_id}/resume", summary="Resume a paused campaign")
def campaign_resume(request, campaign_id: int):
    return _lifecycle(request, campaign_id, lambda c: services.campaign_resume(campaign=c))


@router.post("/campaigns/{campaign_id}/cancel", summary="Cancel a scheduled, sending or paused campaign")
def campaign_cancel(request, campaign_id: int):
    return _lifecycle(request, campaign_id, lambda c: services.campaign_cancel(campaign=c))


# --- Transactional ----------------------------------------------------------------------------


class TransactionalIn(Schema):
    template_id: int
    sender_id: int
    to: EmailStr
    name: str = Field("", max_length=200)
    attributes: dict = {}
    reply_to: EmailStr | None = None


def _message_out(record) -> dict:
    return {
        "id": record.pk,
        "to": record.to_email,
        "status": record.status,
        "message_id": record.message_id,
        "attempts": record.attempts,
        "next_attempt_at": record.next_attempt_at.isoformat() if record.next_attempt_at else None,
        "smtp_code": record.smtp_code,
        "smtp_response": record.smtp_response,
        "sent_at": record.sent_at.isoformat() if record.sent_at else None,
    }


@router.post("/messages", response={201: dict, 202: dict}, summary="Send one message to one address from a template")
def transactional_send(request, payload: TransactionalIn):
    """Sent at once through the workspace's relays; retry safely with an `Idempotency-Key`.

    201 when a relay accepted it. 202 with status "deferred" when none could take it yet: Herald
    retries it with backoff (see `next_attempt_at`) and `GET /messages/{id}` tells how it ended.
    """
    _write(request)
    template = _guard(lambda: get_template_for_member(request.auth, payload.template_id))
    sender = _guard(lambda: get_sender_for_member(request.auth, payload.sender_id))
    if not sender.is_verified:
        raise HttpError(400, f"The sender {sender.email} is not verified yet.")
    if not has_usable_relay(workspace_id=request.auth.workspace_id):
        raise HttpError(400, "No SMTP relay is configured for this workspace.")

    def compute():
        record = transactional.transactional_send(
            workspace_id=request.auth.workspace_id,
            template=template,
            sender=sender,
            to_email=str(payload.to).lower(),
            to_name=payload.name,
            attributes=payload.attributes,
            reply_to=str(payload.reply_to or ""),
        )
        return (201 if record.status == "sent" else 202), _message_out(record)

    return Status(*idempotent(request, compute))


@router.get("/messages/{message_id}", response=dict, summary="A transactional message and how its sending ended")
def transactional_get(request, message_id: int):
    return _message_out(_guard(lambda: get_transactional_message_for_member(request.auth, message_id)))
