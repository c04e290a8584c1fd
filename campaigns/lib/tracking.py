"""The signed token that names one delivery, in its X-Herald-Delivery header, click and open links.

Compact and cheap because every message carries it and every click and open checks it: three
integers as varints after a version byte, then a truncated HMAC-SHA256 under a key derived from
SECRET_KEY and a purpose salt, in unpadded base64url (about 35 characters). No timestamp: a
bounce or a click may arrive months later. Keys in SECRET_KEY_FALLBACKS are still accepted, so
rotating SECRET_KEY does not break links already sent.
"""

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

SALT = b"herald.campaigns.delivery"
VERSION = 1
MAC_BYTES = 16
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]{20,80}")


class InvalidToken(Exception):
    """The token was altered, truncated or signed with another key."""


@dataclass(frozen=True)
class DeliveryToken:
    workspace_id: int
    campaign_id: int
    delivery_id: int


@lru_cache(maxsize=8)
def _key(secret: str) -> bytes:
    return hmac.digest(secret.encode(), SALT, hashlib.sha256)


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, payload, hashlib.sha256)[:MAC_BYTES]


def _varint(value: int) -> bytes:
    if value < 0 or value >= 1 << 63:
        raise ValueError("ids in a delivery token must be between 0 and 2**63 - 1")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def make_delivery_token(*, workspace_id: int, campaign_id: int, delivery_id: int) -> str:
    payload = bytes([VERSION]) + _varint(workspace_id) + _varint(campaign_id) + _varint(delivery_id)
    token = payload + _mac(_key(settings.SECRET_KEY), payload)
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")


def read_delivery_token(token: str) -> DeliveryToken:
    """The delivery a token names; raises InvalidToken for anything Herald did not sign."""
    if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
        raise InvalidToken("Not a delivery token.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except binascii.Error:
        raise InvalidToken("Not a delivery token.") from None
    # Reject other spellings of the same bytes (non-zero padding bits), so a token has one form.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise InvalidToken("Not a delivery token.")
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if len(payload) < 4 or payload[0] != VERSION:
        raise InvalidToken("Not a delivery token.")
    for secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())):
        if hmac.compare_digest(mac, _mac(_key(secret), payload)):
            break
    else:
        raise InvalidToken("The delivery token's signature does not match.")
    values, value, shift = [], 0, 0
    for byte in payload[1:]:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(value)
            value, shift = 0, 0
    if shift or len(values) != 3:
        raise InvalidToken("Not a delivery token.")
    return DeliveryToken(*values)


def click_url(*, site_url: str, token: str, position: int) -> str:
    return f"{site_url.rstrip('/')}/t/c/{token}/{int(position)}"


def open_pixel_url(*, site_url: str, token: str) -> str:
    return f"{site_url.rstrip('/')}/t/o/{token}.gif"
