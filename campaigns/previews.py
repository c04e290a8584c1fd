"""Template previews and test sends: a template rendered for one subscriber, shown or mailed.

Previews and test messages never carry a working unsubscribe or tracking link: a test sent to a
colleague must not unsubscribe the subscriber it was rendered for, nor count as an open.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from campaigns import selectors
from campaigns.lib import message as message_lib
from campaigns.lib.rendering import (
    RenderedMessage,
    TemplateProblem,
    compile_campaign,
    find_template_problems,
    subscriber_context,
)
from campaigns.models import Relay, Sender, SendingDomain, Template
from campaigns.relays import RelayFailure, open_connection
from subscribers.models import Subscriber

logger = logging.getLogger(__name__)

SAMPLE_SUBSCRIBER = {"email": "ada@example.com", "name": "Ada Lovelace", "attributes": {}}
TEST_SENDS_PER_HOUR = 20


class PreviewError(Exception):
    """Why a preview or a test send could not be made, for the marketer."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Preview:
    rendered: RenderedMessage
    subscriber_email: str
    sample: bool  # rendered for the made-up sample subscriber, not a real one


def _preview_context(*, subscriber: Subscriber | None, campaign_name: str) -> dict:
    person = (
        {"email": subscriber.email, "name": subscriber.name, "attributes": subscriber.attributes or {}}
        if subscriber
        else SAMPLE_SUBSCRIBER
    )
    site = settings.SITE_URL
    return {
        "subscriber": subscriber_context(**person),
        "campaign": {"name": campaign_name},
        "unsubscribe_url": f"{site}/u/preview/",
        "preferences_url": f"{site}/u/preview/preferences/",
        "view_in_browser_url": f"{site}/t/v/preview",
    }


ATTRIBUTE_KEYS_CACHE_SECONDS = 60


def _attribute_keys(*, workspace_id: int, cached: bool) -> set[str]:
    """The workspace's attribute names. The live preview reuses them for a minute: the query scans
    every subscriber of the workspace, and the preview asks at every pause in typing."""
    if not cached:
        return selectors.workspace_attribute_keys(workspace_id=workspace_id)
    key = f"campaigns:attribute-keys:{workspace_id}"
    with contextlib.suppress(Exception):
        keys = cache.get(key)
        if keys is not None:
            return set(keys)
    keys = selectors.workspace_attribute_keys(workspace_id=workspace_id)
    with contextlib.suppress(Exception):
        cache.set(key, sorted(keys), timeout=ATTRIBUTE_KEYS_CACHE_SECONDS)
    return keys


def template_problems(
    *, workspace_id: int, subject: str, preheader: str, html: str, text: str, cached: bool = False
) -> list[TemplateProblem]:
    return find_template_problems(
        subject=subject,
        preheader=preheader,
        html=html,
        text=text,
        attribute_keys=_attribute_keys(workspace_id=workspace_id, cached=cached),
    )


def template_preview(
    *,
    workspace_id: int,
    subject: str,
    preheader: str,
    html: str,
    text: str,
    subscriber_email: str = "",
    campaign_name: str = "Preview",
    cached: bool = False,
) -> Preview:
    """Render content for one of the workspace's subscribers (or a sample one); PreviewError if it cannot."""
    problems = template_problems(
        workspace_id=workspace_id, subject=subject, preheader=preheader, html=html, text=text, cached=cached
    )
    if problems:
        raise problems[0]
    subscriber = None
    subscriber_email = (subscriber_email or "").strip().lower()
    if subscriber_email:
        subscriber = Subscriber.objects.filter(workspace_id=workspace_id, email=subscriber_email).first()
        if subscriber is None:
            raise PreviewError(f"No subscriber {subscriber_email} in this workspace.", field="subscriber")
    compiled = compile_campaign(subject=subject, preheader=preheader, html=html, text=text)
    rendered = compiled.render(context=_preview_context(subscriber=subscriber, campaign_name=campaign_name))
    return Preview(
        rendered=rendered, subscriber_email=subscriber.email if subscriber else "", sample=subscriber is None
    )


def _count_test_send(member_id: int) -> None:
    """At most TEST_SENDS_PER_HOUR per member, so the button cannot be used to spam an address."""
    key = f"campaigns:test-sends:{member_id}:{timezone.now():%Y%m%d%H}"
    try:
        cache.add(key, 0, timeout=3600)
        sent = cache.incr(key)
    except Exception:
        return  # without Redis, no limit rather than no test sends
    if sent > TEST_SENDS_PER_HOUR:
        raise PreviewError(f"You have sent {TEST_SENDS_PER_HOUR} test emails this hour; try again later.", field="to")


def template_send_test(*, template: Template, member, to_email: str, subscriber_email: str = "") -> str:
    """Send the saved template, rendered for a subscriber, to an address; returns how it went out.

    Through the workspace's own relays when it has any (what campaigns will use), else through
    the platform's mail.
    """
    preview = template_preview(
        workspace_id=template.workspace_id,
        subject=template.subject,
        preheader=template.preheader,
        html=template.html,
        text=template.text,
        subscriber_email=subscriber_email,
        campaign_name=template.name,
    )
    _count_test_send(member.pk)
    rendered = preview.rendered
    rendered = RenderedMessage(
        subject=f"[Test] {rendered.subject}", preheader=rendered.preheader, html=rendered.html, text=rendered.text
    )
    relays = list(Relay.objects.filter(workspace_id=template.workspace_id, is_active=True).order_by("priority", "id"))
    if relays:
        return _send_through_relays(template=template, relays=relays, to_email=to_email, rendered=rendered)
    message = EmailMultiAlternatives(
        subject=rendered.subject, body=rendered.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to_email]
    )
    if rendered.html:
        message.attach_alternative(rendered.html, "text/html")
    try:
        message.send()
    except (OSError, smtplib.SMTPException) as error:
        raise PreviewError(f"The platform's mail server refused the test message: {error}") from None
    return "the platform's mail server"


def _send_through_relays(*, template: Template, relays: list[Relay], to_email: str, rendered: RenderedMessage) -> str:
    sender = (
        Sender.objects.filter(workspace_id=template.workspace_id, verified_at__isnull=False).order_by("email").first()
    )
    from_name, from_email = ("Herald", settings.DEFAULT_FROM_EMAIL.rpartition("<")[2].rstrip(">").strip())
    if sender:
        from_name, from_email = sender.name, sender.email
    domain = from_email.rpartition("@")[2] or "localhost"
    signer = None
    signing = SendingDomain.objects.filter(
        workspace_id=template.workspace_id, domain=domain, verified_at__isnull=False
    ).first()
    if signing and signing.dkim_private_key:
        with contextlib.suppress(ValueError):
            signer = message_lib.DkimSigner(
                domain=domain, selector=signing.dkim_selector, private_key_pem=signing.dkim_private_key
            )
    payload = message_lib.build_message(
        from_email=from_email,
        from_name=from_name,
        to_email=to_email,
        to_name="",
        reply_to="",
        rendered=rendered,
        message_id=f"<herald.test.{template.pk}.{timezone.now():%Y%m%d%H%M%S%f}@{domain}>",
        list_unsubscribe_url=f"{settings.SITE_URL}/u/preview/",
        list_unsubscribe_mailto=None,
        delivery_token="test",
        dkim=signer,
    )
    errors = []
    for relay in relays:
        try:
            connection = open_connection(relay)
        except RelayFailure as failure:
            errors.append(f"{relay.name}: {failure.response}")
            continue
        try:
            refused = connection.sendmail(from_email, [to_email], payload)
        except smtplib.SMTPRecipientsRefused as error:
            code, answer = next(iter(error.recipients.values()))
            raise PreviewError(f"{relay.name} refused {to_email}: {code} {answer.decode(errors='replace')}") from None
        except (OSError, smtplib.SMTPException) as error:
            errors.append(f"{relay.name}: {error}")
            continue
        finally:
            with contextlib.suppress(Exception):
                connection.quit()
        if not refused:
            return f"the relay {relay.name}"
    raise PreviewError("No relay accepted the test message: " + "; ".join(errors))
