"""Reads of the subscribers app that other apps rely on (campaign audiences above all)."""

from collections.abc import Iterable

from django.db.models import Exists, F, Func, OuterRef, QuerySet, Value

from subscribers.models import ListMembership, Segment, Subscriber, Suppression
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
