"""Reads of the subscribers app: campaign audiences, the dashboard's tables, exports."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Exists, F, Func, OuterRef, Prefetch, Q, QuerySet, Value

from subscribers.models import AuditEntry, ListMembership, MailingList, Segment, Subscriber, Suppression
from subscribers.segments import segment_q


def email_domain(field: str = "email") -> Func:
    """The part of an address after the '@', computed by Postgres."""
    return Func(F(field), Value("@"), Value(2), function="split_part")


def subscribers_sendable(
    *,
    workspace_id: int,
    list_ids: Iterable[int] = (),
    segment: Segment | None = None,
    exclude_list_ids: Iterable[int] = (),
) -> QuerySet[Subscriber]:
    """The workspace's subscribers a campaign to this audience may mail, as one query.

    Members of any of `list_ids` whose membership is confirmed, narrowed by `segment`, minus
    members of `exclude_list_ids`; only active subscribers (never unsubscribed, bounced,
    complained or blocklisted), and none whose address or domain is suppressed. With neither
    lists nor a segment the audience is empty, never "everyone" by accident.
    """
    list_ids, exclude_list_ids = list(list_ids), list(exclude_list_ids)
    queryset = Subscriber.objects.filter(workspace_id=workspace_id, status=Subscriber.Status.ACTIVE)
    if not list_ids and segment is None:
        return queryset.none()
    if list_ids:
        queryset = queryset.filter(
            Exists(
                ListMembership.objects.filter(
                    subscriber=OuterRef("pk"),
                    mailing_list_id__in=list_ids,
                    status=ListMembership.Status.CONFIRMED,
                )
            )
        )
    if segment is not None:
        queryset = queryset.filter(segment_q(segment.rules))
    if exclude_list_ids:
        queryset = queryset.exclude(
            Exists(
                ListMembership.objects.filter(
                    subscriber=OuterRef("pk"),
                    mailing_list_id__in=exclude_list_ids,
                ).exclude(status=ListMembership.Status.UNSUBSCRIBED)
            )
        )
    suppressed_address = Suppression.objects.filter(
        workspace_id=workspace_id, kind=Suppression.Kind.ADDRESS, value=OuterRef("email")
    )
    suppressed_domain = Suppression.objects.filter(
        workspace_id=workspace_id, kind=Suppression.Kind.DOMAIN, value=OuterRef("email_domain")
    )
    return (
        queryset.alias(email_domain=email_domain())
        .exclude(Exists(suppressed_address))
        .exclude(Exists(suppressed_domain))
    )


def is_suppressed(*, workspace_id: int, email: str) -> bool:
    """Whether the address, its domain or its erasure hash is on the workspace's suppression list."""
    from subscribers.services import erasure_digest

    email = email.strip().lower()
    domain = email.rpartition("@")[2]
    return (
        Suppression.objects.filter(workspace_id=workspace_id)
        .filter(
            kind__in=[Suppression.Kind.ADDRESS, Suppression.Kind.DOMAIN, Suppression.Kind.HASH],
            value__in=[email, domain, erasure_digest(workspace_id=workspace_id, email=email)],
        )
        .exists()
    )


def erased_emails(*, workspace_id: int, emails: Iterable[str]) -> set[str]:
    """Which of these addresses belong to subscribers erased on request (for imports: one query)."""
    from subscribers.services import erasure_digest

    by_digest = {erasure_digest(workspace_id=workspace_id, email=e): e.strip().lower() for e in emails}
    found = Suppression.objects.filter(
        workspace_id=workspace_id, kind=Suppression.Kind.HASH, value__in=list(by_digest)
    ).values_list("value", flat=True)
    return {by_digest[digest] for digest in found}


@dataclass
class KeysetPage:
    """One page of rows ordered by descending id, with the ids that open its neighbours."""

    rows: list
    next_after: int | None  # ?after=<id>: the page after this one
    previous_before: int | None  # ?before=<id>: the page before it


def keyset_page(
    queryset: QuerySet, *, after: int | None = None, before: int | None = None, size: int = 50
) -> KeysetPage:
    """A page of `queryset` by id, newest first, found by an index range scan, never by OFFSET.

    OFFSET reads and throws away every row before the page; at a million subscribers the last
    page would cost a million rows. `id < after` costs the same on every page.
    """
    if before is not None:
        rows = list(queryset.filter(pk__gt=before).order_by("pk")[: size + 1])
        has_more_before = len(rows) > size
        rows = list(reversed(rows[:size]))
        return KeysetPage(
            rows=rows,
            next_after=rows[-1].pk if rows else None,
            previous_before=rows[0].pk if rows and has_more_before else None,
        )
    if after is not None:
        queryset = queryset.filter(pk__lt=after)
    rows = list(queryset.order_by("-pk")[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        rows=rows,
        next_after=rows[-1].pk if rows and has_more else None,
        previous_before=rows[0].pk if rows and after is not None else None,
    )


def subscribers_table(
    *,
    workspace_id: int,
    search: str = "",
    status: str = "",
    list_id: int | None = None,
    segment: Segment | None = None,
) -> QuerySet[Subscriber]:
    """The workspace's subscribers for the dashboard table, filtered; memberships prefetched."""
    queryset = Subscriber.objects.filter(workspace_id=workspace_id)
    search = search.strip()
    if search:
        queryset = queryset.filter(Q(email__icontains=search.lower()) | Q(name__icontains=search))
    if status:
        queryset = queryset.filter(status=status)
    if list_id:
        queryset = queryset.filter(
            Exists(
                ListMembership.objects.filter(subscriber=OuterRef("pk"), mailing_list_id=list_id).exclude(
                    status=ListMembership.Status.UNSUBSCRIBED
                )
            )
        )
    if segment is not None:
        queryset = queryset.filter(segment_q(segment.rules))
    return queryset.prefetch_related(
        Prefetch(
            "memberships",
            queryset=ListMembership.objects.select_related("mailing_list").order_by("mailing_list__name"),
        )
    )


def lists_with_counts(*, workspace_id: int) -> QuerySet[MailingList]:
    """The workspace's lists, each with its member count per membership status, in one query."""
    statuses = ListMembership.Status
    return MailingList.objects.filter(workspace_id=workspace_id).annotate(
        confirmed_count=Count("memberships", filter=Q(memberships__status=statuses.CONFIRMED)),
        unconfirmed_count=Count("memberships", filter=Q(memberships__status=statuses.UNCONFIRMED)),
        unsubscribed_count=Count("memberships", filter=Q(memberships__status=statuses.UNSUBSCRIBED)),
    )


def segment_count(*, workspace_id: int, rules: dict) -> int:
    """How many of the workspace's subscribers the rules select (rules must be valid)."""
    return Subscriber.objects.filter(workspace_id=workspace_id).filter(segment_q(rules)).count()


def audit_entries_for_subscriber(*, workspace_id: int, subscriber_id: int, limit: int = 100) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(workspace_id=workspace_id, subscriber_id=subscriber_id).order_by("-id")[:limit]
    )


def subscriber_export(*, subscriber: Subscriber) -> dict:
    """Everything Herald holds about one person, as JSON-able data (a data-subject access request)."""
    memberships = ListMembership.objects.filter(subscriber=subscriber).select_related("mailing_list")
    domain = subscriber.email.rpartition("@")[2]
    suppressions = Suppression.objects.filter(workspace_id=subscriber.workspace_id).filter(
        Q(kind=Suppression.Kind.ADDRESS, value=subscriber.email) | Q(kind=Suppression.Kind.DOMAIN, value=domain)
    )
    entries = AuditEntry.objects.filter(workspace_id=subscriber.workspace_id, subscriber_id=subscriber.pk).order_by(
        "id"
    )
    return {
        "subscriber": {
            "id": subscriber.pk,
            "email": subscriber.email,
            "name": subscriber.name,
            "status": subscriber.status,
            "source": subscriber.source,
            "attributes": subscriber.attributes,
            "created_at": subscriber.created_at,
            "updated_at": subscriber.updated_at,
            "status_changed_at": subscriber.status_changed_at,
            "last_activity_at": subscriber.last_activity_at,
        },
        "consent": {
            "at": subscriber.consent_at,
            "method": subscriber.consent_method,
            "ip": subscriber.consent_ip,
            "text": subscriber.consent_text,
        },
        "memberships": [
            {
                "list_id": m.mailing_list_id,
                "list": m.mailing_list.name,
                "status": m.status,
                "subscribed_at": m.subscribed_at,
                "confirmed_at": m.confirmed_at,
                "unsubscribed_at": m.unsubscribed_at,
            }
            for m in memberships
        ],
        "suppressions": [
            {"kind": s.kind, "value": s.value, "reason": s.reason, "created_at": s.created_at} for s in suppressions
        ],
        "activity": [
            {"at": e.created_at, "by": e.actor_label, "action": e.action, "object": e.object_repr, "changes": e.changes}
            for e in entries
        ],
    }
