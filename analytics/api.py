"""Analytics JSON API: campaign statistics, events (filtered, cursor-paginated), subscriber activity.

Mounted in config/urls.py. Each endpoint receives the caller's API key as `request.auth`, which
stands in for a member in the access helpers, so another workspace's campaign or subscriber is
a 404 exactly as in the dashboard. All endpoints are reads: read-only keys may call them.
"""

from datetime import datetime

from django.db import DatabaseError
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from analytics import selectors
from analytics.models import Event
from subscribers.access import get_subscriber_for_member

router = Router(tags=["analytics"])
MAX_LIMIT = 500


class EventOut(Schema):
    id: int
    type: str
    campaign_id: int
    delivery_id: int
    subscriber_id: int | None
    occurred_at: datetime
    link_position: int | None
    is_bot: bool
    bot_reason: str
    device: str
    client: str


class EventPage(Schema):
    items: list[EventOut]
    next_cursor: str | None


class EventFilters(Schema):
    campaign_id: int | None = None
    type: str | None = None
    include_bots: bool = True
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None
    limit: int = 100


def _page(queryset, *, cursor: str | None, limit: int) -> dict:
    if not 1 <= limit <= MAX_LIMIT:
        raise HttpError(422, f"limit must be between 1 and {MAX_LIMIT}.")
    if cursor:
        if not cursor.isdigit():
            raise HttpError(422, "cursor must be the next_cursor of a previous page.")
        queryset = queryset.filter(id__gt=int(cursor))
    try:
        rows = list(queryset.order_by("id")[: limit + 1])
    except DatabaseError:
        raise HttpError(503, "Events cannot be read right now; retry shortly.") from None
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": str(rows[-1].id) if more and rows else None}


@router.get("/analytics/campaigns/{campaign_id}", summary="A campaign's statistics")
def campaign_statistics(request, campaign_id: int):
    try:
        figures = selectors.campaign_report(member=request.auth, campaign_id=campaign_id)
    except selectors.FiguresUnavailable:
        raise HttpError(503, "Statistics cannot be read right now; retry shortly.") from None
    data = figures.data
    return {
        "campaign": data["campaign"],
        "totals": data["totals"],
        "rates": data["rates"],
        "links": data["links"],
        "outcomes": data["outcomes"],
        "clients": data["clients"],
        "hourly": data["hourly"],
        "computed_at": figures.computed_at,
        "stale": figures.stale,
    }


@router.get("/analytics/events", response=EventPage, summary="Events of the workspace, oldest first")
def events(request, filters: Query[EventFilters]):
    queryset = Event.objects.using(selectors.read_aliases()[0]).filter(workspace_id=request.auth.workspace_id)
    if filters.campaign_id is not None:
        from analytics.access import get_campaign_for_report

        get_campaign_for_report(request.auth, filters.campaign_id)  # 404 outside the workspace
        queryset = queryset.filter(campaign_id=filters.campaign_id)
    if filters.type is not None:
        if filters.type not in Event.Type.values:
            raise HttpError(422, f"type must be one of {', '.join(Event.Type.values)}.")
        queryset = queryset.filter(type=filters.type)
    if not filters.include_bots:
        queryset = queryset.filter(is_bot=False)
    if filters.since:
        queryset = queryset.filter(occurred_at__gte=filters.since)
    if filters.until:
        queryset = queryset.filter(occurred_at__lt=filters.until)
    return _page(queryset, cursor=filters.cursor, limit=filters.limit)


@router.get("/analytics/subscribers/{subscriber_id}/activity", response=EventPage, summary="What one subscriber did")
def subscriber_activity(request, subscriber_id: int, cursor: str | None = None, limit: int = 100):
    subscriber = get_subscriber_for_member(request.auth, subscriber_id)
    queryset = Event.objects.using(selectors.read_aliases()[0]).filter(
        workspace_id=request.auth.workspace_id, subscriber_id=subscriber.pk
    )
    return _page(queryset, cursor=cursor, limit=limit)
