"""Signed tokens in the links Herald puts in email: unsubscribe, preferences, opt-in confirmation.

A token names the subscriber (and, for unsubscribes, the campaign that carried the link, for
attribution), is signed with SECRET_KEY under a purpose-specific salt, and needs no database
row, so links keep working however many messages were sent. An altered, truncated or
re-signed token is refused.
"""

from dataclasses import dataclass

from django.core import signing

UNSUBSCRIBE_SALT = "herald.subscribers.unsubscribe"
CONFIRM_SALT = "herald.subscribers.confirm"
# Opt-in confirmation links expire; unsubscribe links never do (a person may click one years later).
CONFIRM_MAX_AGE_SECONDS = 7 * 24 * 3600


class InvalidToken(Exception):
    """The token was altered, truncated, signed with another key, or has expired."""


@dataclass(frozen=True)
class UnsubscribeToken:
    workspace_id: int
    subscriber_id: int
    campaign_id: int | None = None


def make_unsubscribe_token(*, workspace_id: int, subscriber_id: int, campaign_id: int | None = None) -> str:
    payload = [workspace_id, subscriber_id] + ([campaign_id] if campaign_id else [])
    return signing.dumps(payload, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> UnsubscribeToken:
    try:
        payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise InvalidToken("This link is not valid.") from None
    if not isinstance(payload, list) or len(payload) not in (2, 3) or not all(isinstance(v, int) for v in payload):
        raise InvalidToken("This link is not valid.")
    return UnsubscribeToken(*payload)


def make_confirm_token(*, subscriber_id: int, list_id: int) -> str:
    return signing.dumps([subscriber_id, list_id], salt=CONFIRM_SALT, compress=True)


def read_confirm_token(token: str) -> tuple[int, int]:
    """(subscriber id, list id) of a confirmation link younger than a week."""
    try:
        payload = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise InvalidToken("This confirmation link has expired; subscribe again to get a new one.") from None
    except signing.BadSignature:
        raise InvalidToken("This link is not valid.") from None
    if not isinstance(payload, list) or len(payload) != 2 or not all(isinstance(v, int) for v in payload):
        raise InvalidToken("This link is not valid.")
    return payload[0], payload[1]


def unsubscribe_url(*, workspace_id: int, subscriber_id: int, campaign_id: int | None = None) -> str:
    """The absolute unsubscribe link for an email (also the RFC 8058 one-click POST target)."""
    from django.conf import settings
    from django.urls import reverse

    token = make_unsubscribe_token(workspace_id=workspace_id, subscriber_id=subscriber_id, campaign_id=campaign_id)
    return settings.SITE_URL + reverse("unsubscribe", args=[token])


def preferences_url(*, workspace_id: int, subscriber_id: int, campaign_id: int | None = None) -> str:
    """The absolute link to the page where the person picks the lists they stay on."""
    from django.conf import settings
    from django.urls import reverse

    token = make_unsubscribe_token(workspace_id=workspace_id, subscriber_id=subscriber_id, campaign_id=campaign_id)
    return settings.SITE_URL + reverse("unsubscribe_preferences", args=[token])
