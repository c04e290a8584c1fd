"""Reading bounce and complaint reports that arrive by email.

`parse_bounce` understands RFC 3464 delivery status notifications (multipart/report;
report-type=delivery-status), RFC 5965 ARF complaint reports (report-type=feedback-report), and
falls back to the plain-text bounces some older MTAs still send. A permanent failure (5.x.x) is a
hard bounce, a transient one (4.x.x, or action "delayed") soft. The X-Herald-Delivery token of
the original message, which both kinds of report usually include, ties the report to a delivery.
"""

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"(?<![\d.])([245])\d\d(?![\d.])")
# In free text only a reply code that reads like one: at a line start or after "said:", then a space or dash.
_SMTP_REPLY = re.compile(r"(?:^|said:|\s)([45])\d\d[ -]", re.MULTILINE)
# Where a plain-text bounce starts quoting the original message (whose text proves nothing).
_QUOTE_START = re.compile(
    r"^(-+ ?(this is a copy|original message|below this line)|-+ ?Original message)", re.IGNORECASE | re.MULTILINE
)
_TOKEN_HEADER = re.compile(rb"^X-Herald-Delivery:[ \t]*([A-Za-z0-9_-]{20,80})", re.IGNORECASE | re.MULTILINE)
_ADDRESS = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")
_MAILER_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery (subsystem|system)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|failure|has failed)|returned mail|failure notice|mail delivery failed",
    re.IGNORECASE,
)
_SEVERITY = {"failed": 2, "delayed": 1}


@dataclass(frozen=True)
class BounceReport:
    kind: str  # "bounce" or "complaint"
    recipient: str  # the address that bounced or complained; "" when the report withholds it
    hard: bool  # a permanent failure: stop mailing the address. Always False for complaints.
    status: str = ""  # enhanced status code, e.g. "5.1.1"
    action: str = ""  # RFC 3464 action: "failed" or "delayed"
    diagnostic: str = ""  # the remote server's words, or the complaint's feedback type
    delivery_token: str | None = None  # X-Herald-Delivery of the original message
    original_message_id: str | None = None
    feedback_type: str = ""  # ARF: abuse, fraud, virus, other
    reporting_mta: str = ""

    @property
    def is_complaint(self) -> bool:
        return self.kind == "complaint"


def parse_bounce(message_bytes: bytes) -> BounceReport | None:
    """The report a message carries, or None if it is not a bounce or a complaint."""
    message = email.message_from_bytes(message_bytes, policy=email.policy.compat32)
    if message.get_content_type() == "multipart/report":
        report_type = (message.get_param("report-type") or "").lower()
        if report_type == "delivery-status":
            return _delivery_status(message, message_bytes)
        if report_type == "feedback-report":
            return _feedback_report(message, message_bytes)
    for part in message.walk():  # a report with a wrong or missing report-type parameter
        if part.get_content_type() == "message/delivery-status":
            return _delivery_status(message, message_bytes)
        if part.get_content_type() == "message/feedback-report":
            return _feedback_report(message, message_bytes)
    return _plain_text_bounce(message, message_bytes)


# --- RFC 3464 ------------------------------------------------------------------------------------


def _delivery_status(message: Message, raw: bytes) -> BounceReport | None:
    part = _first_part(message, "message/delivery-status")
    if part is None:
        return None
    blocks = _field_blocks(part)
    if not blocks:
        return None
    per_message, recipients = blocks[0], blocks[1:] or blocks[:1]
    chosen = max(recipients, key=lambda block: _SEVERITY.get(_action(block), 0))
    action = _action(chosen)
    if action not in _SEVERITY:
        return None  # delivered, relayed, expanded: good news, nothing to record
    diagnostic = _field_value(chosen.get("Diagnostic-Code", ""))
    status = _status(chosen.get("Status", "")) or _status(diagnostic)
    if not status:
        code = _SMTP_CODE.search(diagnostic)
        status = f"{code.group(1)}.0.0" if code else ("5.0.0" if action == "failed" else "4.0.0")
    recipient = _field_value(chosen.get("Final-Recipient", "")) or _field_value(chosen.get("Original-Recipient", ""))
    original = _original_headers(message)
    return BounceReport(
        kind="bounce",
        recipient=_bare_address(recipient),
        hard=action == "failed" and status.startswith("5."),
        status=status,
        action=action,
        diagnostic=" ".join(diagnostic.split())[:1000],
        delivery_token=_token(original, raw),
        original_message_id=_message_id(original),
        reporting_mta=_field_value(per_message.get("Reporting-MTA", "")),
    )


def _field_blocks(part: Message) -> list[Message]:
    """The field groups of a message/delivery-status part (per-message first, then per-recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    return [HeaderParser().parsestr(chunk) for chunk in re.split(r"\r?\n[ \t]*\r?\n", text.strip()) if chunk.strip()]


def _action(block: Message) -> str:
    return (block.get("Action") or "").strip().lower().split(" ")[0]


def _status(value: str) -> str:
    match = _STATUS.search(value or "")
    return ".".join(match.groups()) if match else ""


def _field_value(value: str) -> str:
    """`rfc822; user@example.com` -> `user@example.com` (the address-type prefix dropped)."""
    value = " ".join(str(value or "").split())
    return value.split(";", 1)[1].strip() if ";" in value else value


# --- RFC 5965 ------------------------------------------------------------------------------------


def _feedback_report(message: Message, raw: bytes) -> BounceReport | None:
    part = _first_part(message, "message/feedback-report")
    if part is None:
        return None
    blocks = _field_blocks(part)
    fields = blocks[0] if blocks else Message()
    feedback_type = (fields.get("Feedback-Type") or "abuse").strip().lower()
    if feedback_type == "not-spam":
        return None
    original = _original_headers(message)
    recipient = _field_value(fields.get("Original-Rcpt-To", "")) or (original.get("To", "") if original else "")
    return BounceReport(
        kind="complaint",
        recipient=_bare_address(recipient),
        hard=False,
        diagnostic=f"Complaint ({feedback_type})"
        + (f" reported by {fields.get('User-Agent').strip()}" if fields.get("User-Agent") else ""),
        delivery_token=_token(original, raw),
        original_message_id=_message_id(original),
        feedback_type=feedback_type,
        reporting_mta=_field_value(fields.get("Reporting-MTA", "")),
    )


# --- the rest ------------------------------------------------------------------------------------


def _plain_text_bounce(message: Message, raw: bytes) -> BounceReport | None:
    """Old-style bounces (qmail, some Exim setups): a text body from MAILER-DAEMON with a reason."""
    sender = message.get("From", "") or ""
    subject = message.get("Subject", "") or ""
    if not (_MAILER_DAEMON.search(sender) or _BOUNCE_SUBJECT.search(subject)):
        return None
    text = _body_text(message)
    quote = _QUOTE_START.search(text)
    text = text[: quote.start()] if quote else text[:5000]
    status = _status(text)
    if not status:
        code = _SMTP_REPLY.search(text)
        if not code:
            return None
        status = f"{code.group(1)}.0.0"
    if status.startswith("2."):
        return None
    token = _token(None, raw)
    addresses = [address for address in _ADDRESS.findall(text) if not _MAILER_DAEMON.search(address)]
    if not token and not addresses:
        return None
    reason = next((line.strip() for line in text.splitlines() if status in line or _SMTP_REPLY.search(line)), "")
    return BounceReport(
        kind="bounce",
        recipient=addresses[0].lower() if addresses else "",
        hard=status.startswith("5."),
        status=status,
        action="failed" if status.startswith("5.") else "delayed",
        diagnostic=reason[:1000],
        delivery_token=token,
    )


def _first_part(message: Message, content_type: str) -> Message | None:
    return next((part for part in message.walk() if part.get_content_type() == content_type), None)


def _original_headers(message: Message) -> Message | None:
    """The headers of the message that bounced, from a message/rfc822 or text/rfc822-headers part."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
        elif kind in ("text/rfc822-headers", "message/rfc822-headers"):
            text = part.get_payload(decode=True) or b""
            return HeaderParser().parsestr(text.decode("utf-8", "replace"))
    return None


def _token(original: Message | None, raw: bytes) -> str | None:
    if original is not None and original.get("X-Herald-Delivery"):
        token = "".join(str(original.get("X-Herald-Delivery")).split())
        if re.fullmatch(r"[A-Za-z0-9_-]{20,80}", token):
            return token
    match = _TOKEN_HEADER.search(raw)  # quoted in a text part, or a truncated original
    return match.group(1).decode("ascii") if match else None


def _message_id(original: Message | None) -> str | None:
    value = original.get("Message-ID") if original is not None else None
    return " ".join(str(value).split()) if value else None


def _bare_address(value: str) -> str:
    match = _ADDRESS.search(value or "")
    return match.group(1).lower() if match else (value or "").strip().lower()


def _body_text(message: Message) -> str:
    chunks = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True) or b""
            chunks.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(chunks)
