"""Access helpers for the subscribers app: the one way to load its tenant-owned objects.

Each answers 404 outside the caller's workspace and 403 when `write` is asked of a viewer (or a
read-only API key); see accounts/access.py.
"""

from accounts.access import get_for_member
from subscribers.models import MailingList, Segment, Subscriber, Suppression


def get_subscriber_for_member(member, subscriber_id: object, *, write: bool = False) -> Subscriber:
    return get_for_member(Subscriber.objects.all(), member=member, pk=subscriber_id, write=write)


def get_list_for_member(member, list_id: object, *, write: bool = False) -> MailingList:
    return get_for_member(MailingList.objects.all(), member=member, pk=list_id, write=write)


def get_segment_for_member(member, segment_id: object, *, write: bool = False) -> Segment:
    return get_for_member(Segment.objects.all(), member=member, pk=segment_id, write=write)


def get_suppression_for_member(member, suppression_id: object, *, write: bool = False) -> Suppression:
    return get_for_member(Suppression.objects.all(), member=member, pk=suppression_id, write=write)
