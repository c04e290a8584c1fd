"""The subscribers part of the JSON API: subscribers, lists and memberships.

`request.auth` is the caller's API key; it stands in for a member in the access helpers, so a
read key reads and a write key writes, and another workspace's ids answer 404. Every refusal
is JSON with a `detail` message, never a 500.
"""

import functools
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from accounts.access import require_write
from accounts.api import idempotent
from subscribers.access import get_list_for_member, get_segment_for_member, get_subscriber_for_member
from subscribers.audit import audit_record
from subscribers.models import AuditEntry, ListMembership, MailingList, Subscriber
from subscribers.selectors import lists_with_counts, subscriber_export, subscribers_table
from subscribers.services import (
    DuplicateSubscriberError,
    list_create,
    list_delete,
    list_update,
    membership_add,
    membership_remove,
    subscriber_create,
    subscriber_delete,
    subscriber_erase,
    subscriber_unsubscribe,
    subscriber_update,
    subscriber_upsert,
)

router = Router(tags=["subscribers"])
MAX_LIMIT = 500


def json_errors(view):
    """Turn the services' and access helpers' refusals into JSON answers with a clear message."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            raise HttpError(403, str(exc) or "This API key is read-only.") from None
        except DuplicateSubscriberError as exc:
            raise HttpError(409, " ".join(exc.messages)) from None
        except ValidationError as exc:
            raise HttpError(422, " ".join(exc.messages)) from None

    return wrapper


# --- schemas -------------------------------------------------------------------------------


class MembershipBrief(Schema):
    list_id: int
    list_name: str
    status: str


class Consent(Schema):
    at: datetime | None
    method: str
    ip: str | None
    text: str


class SubscriberOut(Schema):
    id: int
    email: str
    name: str
    status: str
    source: str
    attributes: dict[str, Any]
    consent: Consent
    lists: list[MembershipBrief]
    created_at: datetime
    updated_at: datetime


class SubscriberIn(Schema):
    email: str
    name: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)
    lists: list[int] = Field(default_factory=list, description="Ids of lists to add the subscriber to (confirmed).")
    upsert: bool = Field(False, description="Update the subscriber with this address instead of answering 409.")


class SubscriberPatch(Schema):
    email: str | None = None
    name: str | None = None
    attributes: dict[str, Any] | None = Field(None, description="Replaces the attributes entirely.")
    status: str | None = None


class SubscriberPage(Schema):
    items: list[SubscriberOut]
    next_cursor: str | None


class SubscriberFilters(Schema):
    q: str = Field("", description="Part of the email or name.")
    email: str = Field("", description="Exactly this address.")
    status: str = ""
    list_id: int | None = None
    segment_id: int | None = None
    cursor: str | None = Field(None, description="next_cursor of the previous page.")
    limit: int = Field(100, ge=1, le=MAX_LIMIT)


class UnsubscribeIn(Schema):
    list_ids: list[int] | None = Field(
        None, description="Leave only these lists; omitted: unsubscribe from everything."
    )


class ChangedOut(Schema):
    changed: bool


class ListCounts(Schema):
    confirmed: int
    unconfirmed: int
    unsubscribed: int


class ListOut(Schema):
    id: int
    name: str
    description: str
    opt_in: str
    consent_text: str
    subscribe_url: str
    counts: ListCounts
    created_at: datetime


class ListIn(Schema):
    name: str
    description: str = ""
    opt_in: str = MailingList.OptIn.SINGLE
    consent_text: str | None = None


class ListPatch(Schema):
    name: str | None = None
    description: str | None = None
    opt_in: str | None = None
    consent_text: str | None = None


class MembershipIn(Schema):
    subscriber_id: int | None = None
    email: str | None = Field(None, description="Instead of subscriber_id: the subscriber with this address.")


class MembershipOut(Schema):
    subscriber_id: int
    email: str
    list_id: int
    status: str
    subscribed_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None


class MembershipPage(Schema):
    items: list[MembershipOut]
    next_cursor: str | None


class Message(Schema):
    detail: str


ERRORS = {400: Message, 403: Message, 404: Message, 409: Message, 422: Any}


def _subscriber_out(subscriber: Subscriber) -> dict:
    memberships = subscriber.memberships.all()
    return {
        "id": subscriber.pk,
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "source": subscriber.source,
        "attributes": subscriber.attributes,
        "consent": {
            "at": subscriber.consent_at,
            "method": subscriber.consent_method,
            "ip": subscriber.consent_ip,
            "text": subscriber.consent_text,
        },
        "lists": [
            {"list_id": m.mailing_list_id, "list_name": m.mailing_list.name, "status": m.status}
            for m in sorted(memberships, key=lambda m: m.mailing_list.name)
        ],
        "created_at": subscriber.created_at,
        "updated_at": subscriber.updated_at,
    }


def _fresh(subscriber_id: int) -> Subscriber:
    return Subscriber.objects.prefetch_related("memberships__mailing_list").get(pk=subscriber_id)


def _cursor(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit():
        raise HttpError(400, "cursor must be the next_cursor of a previous page.")
    return int(value)


# --- subscribers ---------------------------------------------------------------------------


@router.get("/subscribers", response={200: SubscriberPage, **ERRORS}, summary="List subscribers")
@json_errors
def subscribers_list(request, filters: Query[SubscriberFilters]):
    key = request.auth
    segment = get_segment_for_member(key, filters.segment_id) if filters.segment_id else None
    if filters.list_id:
        get_list_for_member(key, filters.list_id)
    queryset = subscribers_table(
        workspace_id=key.workspace_id,
        search=filters.q,
        status=filters.status,
        list_id=filters.list_id,
        segment=segment,
    )
    if filters.email:
        queryset = queryset.filter(email=filters.email.strip().lower())
    after = _cursor(filters.cursor)
    if after is not None:
        queryset = queryset.filter(pk__lt=after)
    rows = list(queryset.order_by("-pk")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {"items": [_subscriber_out(s) for s in rows], "next_cursor": str(rows[-1].pk) if more else None}


@router.post(
    "/subscribers",
    response={200: SubscriberOut, 201: SubscriberOut, **ERRORS},
    summary="Create a subscriber (or update it, with upsert)",
    description="Send an `Idempotency-Key` header to make retries safe: the same key gets the same answer.",
)
@json_errors
def subscribers_create(request, payload: SubscriberIn):
    key = request.auth
    require_write(key)

    def compute():
        if payload.upsert:
            subscriber, created = subscriber_upsert(
                workspace_id=key.workspace_id,
                email=payload.email,
                name=payload.name,
                attributes=payload.attributes,
                list_ids=payload.lists,
                actor=key,
            )
        else:
            subscriber, created = (
                subscriber_create(
                    workspace_id=key.workspace_id,
                    email=payload.email,
                    name=payload.name,
                    attributes=payload.attributes,
                    list_ids=payload.lists,
                    source="api",
                    actor=key,
                ),
                True,
            )
        return (201 if created else 200), _subscriber_out(_fresh(subscriber.pk))

    return Status(*idempotent(request, compute))


@router.get("/subscribers/{subscriber_id}", response={200: SubscriberOut, **ERRORS}, summary="Get a subscriber")
@json_errors
def subscribers_get(request, subscriber_id: int):
    subscriber = get_subscriber_for_member(request.auth, subscriber_id)
    return _subscriber_out(_fresh(subscriber.pk))


@router.patch("/subscribers/{subscriber_id}", response={200: SubscriberOut, **ERRORS}, summary="Update a subscriber")
@json_errors
def subscribers_update(request, subscriber_id: int, payload: SubscriberPatch):
    subscriber = get_subscriber_for_member(request.auth, subscriber_id, write=True)
    subscriber_update(
        subscriber=subscriber,
        actor=request.auth,
        email=payload.email,
        name=payload.name,
        attributes=payload.attributes,
        status=payload.status,
    )
    return _subscriber_out(_fresh(subscriber.pk))


@router.post(
    "/subscribers/{subscriber_id}/unsubscribe",
    response={200: ChangedOut, **ERRORS},
    summary="Unsubscribe from some lists or from everything",
    description='No body (or `{}`) unsubscribes from everything; `{"list_ids": [1, 2]}` leaves only those lists.',
    openapi_extra={
        "requestBody": {"required": False, "content": {"application/json": {"schema": UnsubscribeIn.json_schema()}}}
    },
)
@json_errors
def subscribers_unsubscribe(request, subscriber_id: int):
    subscriber = get_subscriber_for_member(request.auth, subscriber_id, write=True)
    # The body is optional (a bare POST is the common case), so it is read here rather than by a schema.
    try:
        raw = request.body if request.content_type == "application/json" and request.body.strip() else b"{}"
        body = UnsubscribeIn.model_validate_json(raw)
    except ValueError as exc:
        raise HttpError(
            422, f'The body must be empty or like {{"list_ids": [1, 2]}} ({exc.__class__.__name__}).'
        ) from None
    for list_id in body.list_ids or ():
        get_list_for_member(request.auth, list_id)
    changed = subscriber_unsubscribe(
        subscriber_id=subscriber.pk,
        workspace_id=subscriber.workspace_id,
        list_ids=body.list_ids,
        actor=request.auth,
        method="API",
    )
    return {"changed": changed}


@router.delete("/subscribers/{subscriber_id}", response={204: None, **ERRORS}, summary="Delete a subscriber")
@json_errors
def subscribers_delete(request, subscriber_id: int):
    subscriber = get_subscriber_for_member(request.auth, subscriber_id, write=True)
    subscriber_delete(subscriber=subscriber, actor=request.auth)
    return Status(204, None)


@router.get(
    "/subscribers/{subscriber_id}/export",
    response={200: dict[str, Any], **ERRORS},
    summary="Everything held about one subscriber (data access request)",
)
@json_errors
def subscribers_export(request, subscriber_id: int):
    subscriber = get_subscriber_for_member(request.auth, subscriber_id)
    data = subscriber_export(subscriber=subscriber)
    audit_record(
        workspace_id=subscriber.workspace_id,
        actor=request.auth,
        action=AuditEntry.Action.EXPORT,
        object_type="subscriber",
        object_id=subscriber.pk,
        object_repr=subscriber.email,
        subscriber_id=subscriber.pk,
    )
    return data


@router.post(
    "/subscribers/{subscriber_id}/erase",
    response={204: None, **ERRORS},
    summary="Erase a subscriber (right to be forgotten); only a hash stays, to keep them off",
)
@json_errors
def subscribers_erase(request, subscriber_id: int):
    subscriber = get_subscriber_for_member(request.auth, subscriber_id, write=True)
    subscriber_erase(subscriber=subscriber, actor=request.auth)
    return Status(204, None)


# --- lists ---------------------------------------------------------------------------------


def _list_out(mailing_list: MailingList) -> dict:
    return {
        "id": mailing_list.pk,
        "name": mailing_list.name,
        "description": mailing_list.description,
        "opt_in": mailing_list.opt_in,
        "consent_text": mailing_list.consent_text,
        "subscribe_url": settings.SITE_URL + reverse("subscribe", args=[mailing_list.public_token]),
        "counts": {
            "confirmed": mailing_list.confirmed_count,
            "unconfirmed": mailing_list.unconfirmed_count,
            "unsubscribed": mailing_list.unsubscribed_count,
        },
        "created_at": mailing_list.created_at,
    }


def _counted(key, list_id: int) -> MailingList:
    return lists_with_counts(workspace_id=key.workspace_id).get(pk=list_id)


@router.get("/lists", response={200: list[ListOut], **ERRORS}, summary="List the workspace's lists")
@json_errors
def lists_index(request):
    return [_list_out(m) for m in lists_with_counts(workspace_id=request.auth.workspace_id).order_by("name")]


@router.post("/lists", response={201: ListOut, **ERRORS}, summary="Create a list")
@json_errors
def lists_create(request, payload: ListIn):
    key = request.auth
    require_write(key)

    def compute():
        mailing_list = list_create(
            workspace_id=key.workspace_id,
            name=payload.name,
            opt_in=payload.opt_in,
            description=payload.description,
            consent_text=payload.consent_text,
            actor=key,
        )
        return 201, _list_out(_counted(key, mailing_list.pk))

    return Status(*idempotent(request, compute))


@router.get("/lists/{list_id}", response={200: ListOut, **ERRORS}, summary="Get a list with its counts")
@json_errors
def lists_get(request, list_id: int):
    mailing_list = get_list_for_member(request.auth, list_id)
    return _list_out(_counted(request.auth, mailing_list.pk))


@router.patch("/lists/{list_id}", response={200: ListOut, **ERRORS}, summary="Update a list")
@json_errors
def lists_update(request, list_id: int, payload: ListPatch):
    mailing_list = get_list_for_member(request.auth, list_id, write=True)
    list_update(mailing_list=mailing_list, actor=request.auth, **payload.dict())
    return _list_out(_counted(request.auth, mailing_list.pk))


@router.delete("/lists/{list_id}", response={204: None, **ERRORS}, summary="Delete a list (its subscribers stay)")
@json_errors
def lists_delete(request, list_id: int):
    mailing_list = get_list_for_member(request.auth, list_id, write=True)
    list_delete(mailing_list=mailing_list, actor=request.auth)
    return Status(204, None)


# --- memberships ---------------------------------------------------------------------------


def _membership_out(membership: ListMembership) -> dict:
    return {
        "subscriber_id": membership.subscriber_id,
        "email": membership.subscriber.email,
        "list_id": membership.mailing_list_id,
        "status": membership.status,
        "subscribed_at": membership.subscribed_at,
        "confirmed_at": membership.confirmed_at,
        "unsubscribed_at": membership.unsubscribed_at,
    }


@router.get("/lists/{list_id}/members", response={200: MembershipPage, **ERRORS}, summary="A list's members")
@json_errors
def memberships_list(
    request,
    list_id: int,
    status: str = "",
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
):
    mailing_list = get_list_for_member(request.auth, list_id)
    queryset = ListMembership.objects.filter(mailing_list=mailing_list).select_related("subscriber")
    if status:
        queryset = queryset.filter(status=status)
    after = _cursor(cursor)
    if after is not None:
        queryset = queryset.filter(pk__lt=after)
    rows = list(queryset.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_membership_out(m) for m in rows], "next_cursor": str(rows[-1].pk) if more else None}


@router.post(
    "/lists/{list_id}/members",
    response={200: MembershipOut, 201: MembershipOut, **ERRORS},
    summary="Add a subscriber to a list (confirmed)",
    description="Someone who left the list stays off it (`unsubscribed`): only their own consent brings them back.",
)
@json_errors
def memberships_add(request, list_id: int, payload: MembershipIn):
    key = request.auth
    mailing_list = get_list_for_member(key, list_id, write=True)
    if payload.subscriber_id is not None:
        subscriber = get_subscriber_for_member(key, payload.subscriber_id)
    elif payload.email:
        subscriber = Subscriber.objects.filter(
            workspace_id=key.workspace_id, email=payload.email.strip().lower()
        ).first()
        if subscriber is None:
            raise HttpError(404, "No subscriber with that address in this workspace.")
    else:
        raise HttpError(422, "Give subscriber_id or email.")
    membership, changed = membership_add(subscriber=subscriber, mailing_list=mailing_list, actor=key)
    membership.subscriber = subscriber
    return Status(201 if changed else 200, _membership_out(membership))


@router.delete(
    "/lists/{list_id}/members/{subscriber_id}",
    response={204: None, **ERRORS},
    summary="Remove a subscriber from a list",
)
@json_errors
def memberships_remove(request, list_id: int, subscriber_id: int):
    mailing_list = get_list_for_member(request.auth, list_id, write=True)
    subscriber = get_subscriber_for_member(request.auth, subscriber_id)
    if not membership_remove(subscriber=subscriber, mailing_list=mailing_list, actor=request.auth):
        raise HttpError(404, "That subscriber is not on this list.")
    return Status(204, None)
