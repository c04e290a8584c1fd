"""Access helpers for the campaigns app: the one way to load its tenant-owned objects.

Each answers 404 outside the caller's workspace and 403 when `write` is asked of a viewer (or a
read-only API key); relays take an owner or admin to change (see accounts/access.py).
"""

from accounts.access import get_for_member, require_manage
from campaigns.models import Campaign, Delivery, Relay, Sender, SendingDomain, Template, TransactionalMessage


def get_campaign_for_member(member, campaign_id: object, *, write: bool = False) -> Campaign:
    queryset = Campaign.objects.select_related("sender", "segment", "template")
    return get_for_member(queryset, member=member, pk=campaign_id, write=write)


def get_template_for_member(member, template_id: object, *, write: bool = False) -> Template:
    return get_for_member(Template.objects.all(), member=member, pk=template_id, write=write)


def get_sender_for_member(member, sender_id: object, *, write: bool = False) -> Sender:
    return get_for_member(Sender.objects.all(), member=member, pk=sender_id, write=write)


def get_sending_domain_for_member(member, domain_id: object, *, write: bool = False) -> SendingDomain:
    return get_for_member(SendingDomain.objects.all(), member=member, pk=domain_id, write=write)


def get_delivery_for_member(member, delivery_id: object) -> Delivery:
    return get_for_member(Delivery.objects.select_related("campaign"), member=member, pk=delivery_id)


def get_transactional_message_for_member(member, message_id: object) -> TransactionalMessage:
    return get_for_member(TransactionalMessage.objects.all(), member=member, pk=message_id)


def get_relay_for_member(member, relay_id: object, *, write: bool = False) -> Relay:
    """One of the workspace's own relays (platform defaults are managed in the Django admin)."""
    relay = get_for_member(Relay.objects.all(), member=member, pk=relay_id)
    if write:
        require_manage(member)
    return relay
