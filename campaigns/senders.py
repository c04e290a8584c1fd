"""Writes and DNS checks for a workspace's From addresses and sending domains.

A sender becomes usable once someone who reads its mailbox follows the signed link Herald mails
to it. A sending domain gets a DKIM key pair on request (the private key encrypted at rest by
its model field) and the SPF, DKIM and DMARC records to publish; checking the DNS marks it
verified once its DKIM record carries the key, which is when campaigns start signing with it.
"""

from __future__ import annotations

import ipaddress
import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta

import dns.exception
import dns.resolver
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.urls import reverse
from django.utils import timezone

from campaigns.lib.message import generate_dkim_key
from campaigns.models import Relay, Sender, SendingDomain

logger = logging.getLogger(__name__)

CONFIRM_SALT = "herald.campaigns.sender-confirm"
CONFIRM_MAX_AGE = timedelta(days=3)
RESEND_AFTER = timedelta(minutes=1)
DKIM_SELECTOR = "herald"
DNS_TIMEOUT_SECONDS = 5.0


class SenderError(Exception):
    """A request about senders or domains that cannot be done, with a message for the marketer."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


# --- Senders -----------------------------------------------------------------------------------


def _normalized_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise SenderError("Enter a valid email address.", field="email") from None
    return email


def sender_create(*, workspace, email: str, name: str = "", actor=None) -> tuple[Sender, str | None]:
    """Add an unverified From address and mail it a confirmation link.

    Returns the sender and, if the confirmation email could not be sent, why (the sender is kept,
    and the senders page offers to send it again).
    """
    email = _normalized_email(email)
    name = " ".join((name or "").split())[:200]
    try:
        with transaction.atomic():
            sender = Sender.objects.create(workspace=workspace, email=email, name=name)
    except IntegrityError:
        raise SenderError("This address is already one of the workspace's senders.", field="email") from None
    try:
        sender_send_verification(sender=sender, force=True)
    except SenderError as error:
        return sender, error.message
    return sender, None


def sender_confirm_token(*, sender: Sender) -> str:
    return signing.dumps([sender.pk, sender.email], salt=CONFIRM_SALT, compress=True)


def sender_send_verification(*, sender: Sender, force: bool = False) -> None:
    """Mail the confirmation link; refused within a minute of the last one (unless `force`)."""
    if sender.is_verified:
        raise SenderError(f"{sender.email} is already verified.")
    now = timezone.now()
    recent = Sender.objects.filter(pk=sender.pk, verification_sent_at__gt=now - RESEND_AFTER).exists()
    if recent and not force:
        raise SenderError("A confirmation email was sent less than a minute ago; check that inbox first.")
    link = settings.SITE_URL + reverse("campaigns:sender_confirm", args=[sender_confirm_token(sender=sender)])
    try:
        send_mail(
            subject="Confirm this address for sending with Herald",
            message=(
                f"Someone in the workspace \u201c{sender.workspace.name}\u201d wants to send email from "
                f"{sender.email}.\n\nIf that was you or your team, confirm the address here (the link works "
                f"for three days):\n\n{link}\n\n"
                "If not, ignore this message: nothing is sent from this address until it is confirmed."
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[sender.email],
        )
    except (OSError, smtplib.SMTPException) as error:
        logger.warning("could not send a sender confirmation", extra={"sender_id": sender.pk, "error": str(error)})
        raise SenderError(f"The confirmation email could not be sent ({error}); try again shortly.") from None
    Sender.objects.filter(pk=sender.pk).update(verification_sent_at=now, updated_at=now)
    sender.verification_sent_at = now


def sender_for_token(token: str) -> Sender:
    """The sender a confirmation link names, or SenderError (expired, altered, address changed)."""
    try:
        sender_id, email = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.SignatureExpired:
        raise SenderError("This confirmation link has expired; ask for a new one on the senders page.") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise SenderError("This confirmation link is not valid.") from None
    sender = Sender.objects.select_related("workspace").filter(pk=sender_id, email=email).first()
    if sender is None:
        raise SenderError("This address is no longer waiting for confirmation.")
    return sender


def sender_confirm(*, token: str) -> Sender:
    """Mark the sender a link names as verified; confirming twice is harmless."""
    sender = sender_for_token(token)
    now = timezone.now()
    Sender.objects.filter(pk=sender.pk, verified_at__isnull=True).update(verified_at=now, updated_at=now)
    sender.refresh_from_db()
    return sender


def sender_update(*, sender: Sender, name: str) -> Sender:
    sender.name = " ".join((name or "").split())[:200]
    sender.save(update_fields=["name", "updated_at"])
    return sender


def sender_delete(*, sender: Sender) -> None:
    try:
        with transaction.atomic():
            sender.delete()
    except ProtectedError:
        raise SenderError("Campaigns use this sender; it cannot be deleted while they exist.") from None


# --- Sending domains ---------------------------------------------------------------------------


def _normalized_domain(domain: str) -> str:
    domain = (domain or "").strip().lower().rstrip(".")
    if domain.startswith(("http://", "https://")) or "@" in domain or "/" in domain:
        raise SenderError("Enter a domain name only, such as mail.example.com.", field="domain")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise SenderError("This is not a valid domain name.", field="domain") from None
    labels = ascii_domain.split(".")
    valid = len(labels) >= 2 and all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() and not label.startswith("-") for label in labels
    )
    if not valid or len(ascii_domain) > 253:
        raise SenderError("This is not a valid domain name.", field="domain")
    return ascii_domain


def domain_create(*, workspace, domain: str, generate_key: bool = True) -> SendingDomain:
    domain = _normalized_domain(domain)
    try:
        with transaction.atomic():
            sending_domain = SendingDomain.objects.create(
                workspace=workspace, domain=domain, dkim_selector=DKIM_SELECTOR
            )
    except IntegrityError:
        raise SenderError("This domain is already set up in this workspace.", field="domain") from None
    if generate_key:
        domain_generate_dkim_key(sending_domain=sending_domain)
    return sending_domain


def domain_generate_dkim_key(*, sending_domain: SendingDomain) -> SendingDomain:
    """A new key pair; the domain is unverified again until DNS carries the new public key."""
    private_pem, dns_value = generate_dkim_key()
    sending_domain.dkim_private_key = private_pem
    sending_domain.dkim_public_key = dns_value.split("p=", 1)[1]
    sending_domain.verified_at = None
    sending_domain.save(update_fields=["dkim_private_key", "dkim_public_key", "verified_at", "updated_at"])
    return sending_domain


def domain_delete(*, sending_domain: SendingDomain) -> None:
    sending_domain.delete()


@dataclass(frozen=True)
class DnsRecord:
    purpose: str  # SPF, DKIM, DMARC
    name: str
    type: str
    value: str
    note: str = ""


def domain_dns_records(*, sending_domain: SendingDomain) -> list[DnsRecord]:
    """What to publish for the domain: SPF naming the workspace's relays, its DKIM key, a DMARC policy."""
    domain = sending_domain.domain
    relays = Relay.objects.filter(workspace_id=sending_domain.workspace_id, is_active=True).order_by("priority", "id")
    hosts = sorted({relay.host.strip().lower() for relay in relays} or {"your-relay.example.net"})
    mechanisms = []
    for host in hosts:
        try:
            address = ipaddress.ip_address(host)
            mechanisms.append(f"ip{address.version}:{address}")
        except ValueError:
            mechanisms.append(f"a:{host}")
    records = [
        DnsRecord(
            "SPF",
            domain,
            "TXT",
            f"v=spf1 {' '.join(mechanisms)} ~all",
            "Lists the servers that send for the domain (your SMTP relays). If a relay belongs to an email "
            "provider, use the include: value it documents instead. Merge it with any SPF record you already have.",
        )
    ]
    if sending_domain.dkim_public_key:
        records.append(
            DnsRecord(
                "DKIM",
                f"{sending_domain.dkim_selector}._domainkey.{domain}",
                "TXT",
                f"v=DKIM1; k=rsa; p={sending_domain.dkim_public_key}",
                "Herald signs every campaign from this domain with the matching private key once this is published.",
            )
        )
    records.append(
        DnsRecord(
            "DMARC",
            f"_dmarc.{domain}",
            "TXT",
            f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}; adkim=r; aspf=r",
            "Starts in monitoring mode (p=none); move to quarantine, then reject, once the reports look clean.",
        )
    )
    return records


def txt_records(name: str) -> list[str]:
    """The TXT strings published at a name (empty when none, or when DNS does not answer)."""
    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=DNS_TIMEOUT_SECONDS, raise_on_no_answer=False)
    except (dns.exception.DNSException, ValidationError):
        return []
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def _normalize_txt(value: str) -> str:
    return "".join(value.split()).rstrip(";").lower()


def domain_check(*, sending_domain: SendingDomain) -> dict:
    """Look the records up in DNS; the domain is verified while its DKIM record matches its key."""
    found = {}
    for record in domain_dns_records(sending_domain=sending_domain):
        published = txt_records(record.name)
        if record.purpose == "SPF":
            matching = [value for value in published if value.lower().startswith("v=spf1")]
            found[record.purpose] = {"ok": bool(matching), "published": matching[:3]}
        elif record.purpose == "DMARC":
            matching = [value for value in published if value.lower().startswith("v=dmarc1")]
            found[record.purpose] = {"ok": bool(matching), "published": matching[:3]}
        else:
            key = f"p={sending_domain.dkim_public_key}".lower()
            ok = any(key in _normalize_txt(value) for value in published)
            found[record.purpose] = {"ok": ok, "published": [value[:120] for value in published[:3]]}
    now = timezone.now()
    dkim_ok = found.get("DKIM", {}).get("ok", False)
    sending_domain.last_checked_at = now
    sending_domain.last_check_result = found
    if dkim_ok and sending_domain.verified_at is None:
        sending_domain.verified_at = now
    elif not dkim_ok:
        sending_domain.verified_at = None
    sending_domain.save(update_fields=["last_checked_at", "last_check_result", "verified_at", "updated_at"])
    return found
