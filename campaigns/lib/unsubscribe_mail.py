"""Reading the unsubscribe requests people send to a campaign's mailto List-Unsubscribe address.

A campaign message's `List-Unsubscribe` names `mailto:unsubscribe@<domain>?subject=unsubscribe
%20<token>`; a mail client that acts on it sends a message to that address with that subject.
`parse_unsubscribe_mail` recognises such a message (sent to an `unsubscribe@` address, not an
auto-reply) and returns who sent it and the signed tokens it quotes; checking a token is the
caller's job. Nothing here imports Django.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr

UNSUBSCRIBE_LOCAL_PART = "unsubscribe"
# A Django-signed value: base64url payload (a leading "." when compressed), timestamp, signature.
_SIGNED_TOKEN = re.compile(r"\.?[A-Za-z0-9_-]{8,400}:[A-Za-z0-9_-]{4,20}:[A-Za-z0-9_-]{20,100}")
# Headers that name the address a message was delivered to, most precise first.
_RECIPIENT_HEADERS = ("X-Sink-Rcpt-To", "Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")
_MAX_BODY_CHARS = 20_000


@dataclass(frozen=True)
class UnsubscribeMail:
    sender: str  # the From address, lower-cased
    recipient: str  # the unsubscribe@ address it was sent to, lower-cased
    tokens: tuple[str, ...]  # signed tokens quoted in the subject or body, subject first

    @property
    def recipient_domain(self) -> str:
        return self.recipient.rpartition("@")[2]


def parse_unsubscribe_mail(message_bytes: bytes) -> UnsubscribeMail | None:
    """The unsubscribe request a message carries, or None if it is not one."""
    message = email.message_from_bytes(message_bytes, policy=email.policy.compat32)
    if _is_automatic(message):
        return None  # an out-of-office answer to the unsubscribe address asks for nothing
    recipient = _unsubscribe_recipient(message)
    if recipient is None:
        return None
    sender = parseaddr(_text(message.get("From", "")))[1].strip().lower()
    if "@" not in sender:
        sender = ""
    found = _SIGNED_TOKEN.findall(_text(message.get("Subject", ""))) + _SIGNED_TOKEN.findall(_body_text(message))
    return UnsubscribeMail(sender=sender, recipient=recipient, tokens=tuple(dict.fromkeys(found)))


def _is_automatic(message: Message) -> bool:
    auto_submitted = (message.get("Auto-Submitted") or "no").strip().lower()
    precedence = (message.get("Precedence") or "").strip().lower()
    return auto_submitted != "no" or precedence in ("auto_reply", "bulk", "junk") or bool(message.get("X-Autoreply"))


def _unsubscribe_recipient(message: Message) -> str | None:
    for header in _RECIPIENT_HEADERS:
        for _, address in getaddresses([_text(value) for value in message.get_all(header, [])]):
            local, _, domain = address.strip().lower().rpartition("@")
            if domain and local.split("+", 1)[0] == UNSUBSCRIBE_LOCAL_PART:
                return f"{local}@{domain}"
    return None


def _text(value) -> str:
    """A header's value with any RFC 2047 encoded words decoded."""
    decoded = []
    for part, charset in email.header.decode_header(str(value)):
        if isinstance(part, bytes):
            decoded.append(part.decode(charset or "ascii", errors="replace"))
        else:
            decoded.append(part)
    return "".join(decoded)


def _body_text(message: Message) -> str:
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "multipart" or part.get_content_type() not in ("text/plain", "text/html"):
            continue
        payload = part.get_payload(decode=True) or b""
        texts.append(payload.decode(part.get_content_charset() or "utf-8", errors="replace"))
    return "\n".join(texts)[:_MAX_BODY_CHARS]
