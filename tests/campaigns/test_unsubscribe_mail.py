"""The mailto List-Unsubscribe address: a mail client's request reaches the mailbox and unsubscribes."""

from __future__ import annotations

import email
import smtplib
from email import policy
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from campaigns import sending
from campaigns.bounce_tasks import read_bounce_mailbox
from campaigns.lib.unsubscribe_mail import parse_unsubscribe_mail
from campaigns.models import Delivery
from common.smtp_sink import SmtpSink
from subscribers.models import AuditEntry, ListMembership, Subscriber
from tests.factories import (
    CampaignFactory,
    ListMembershipFactory,
    MailingListFactory,
    SenderFactory,
    SubscriberFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(tmp_path, settings):
    """The inbound mailbox, played by the local SMTP sink, that the beat task reads."""
    with SmtpSink(tmp_path / "inbound") as sink:
        settings.BOUNCE_MAILBOX_DIR = str(sink.store.directory)
        yield sink


@pytest.fixture
def reader(team):
    subscriber = SubscriberFactory(workspace=team.a, email="ann@example.org", name="Ann Example")
    ListMembershipFactory(subscriber=subscriber, mailing_list=MailingListFactory(workspace=team.a, name="News"))
    return subscriber


def campaign_message_to(subscriber) -> email.message.EmailMessage:
    """The message the pipeline sends this subscriber, built by the pipeline's own function."""
    sender = SenderFactory(workspace=subscriber.workspace, email="news@acme-mail.test")
    campaign = CampaignFactory(workspace=subscriber.workspace, sender=sender, status="sending")
    delivery = Delivery.objects.create(
        workspace=subscriber.workspace, campaign=campaign, subscriber=subscriber, email=subscriber.email
    )
    claimed = sending.Claimed(id=delivery.pk, subscriber_id=subscriber.pk, email=subscriber.email, attempts=0)
    _, payload = sending.build_campaign_message(plan=sending.PLANS.get(campaign.pk), delivery=claimed)
    return email.message_from_bytes(payload, policy=policy.default)


def mailto_of(message) -> tuple[str, str]:
    """(address, subject) of the message's mailto List-Unsubscribe, as a mail client reads it."""
    links = [part.strip().strip("<>") for part in str(message["List-Unsubscribe"]).split(",")]
    mailto = urlsplit(next(link for link in links if link.startswith("mailto:")))
    return unquote(mailto.path), parse_qs(mailto.query)["subject"][0]


def send_to_mailbox(sink: SmtpSink, *, sender: str, to: str, subject: str, body: str = "", **headers) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body or "Please take me off this list.")
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.send_message(message, from_addr=sender, to_addrs=[to])


def status_of(subscriber) -> str:
    return Subscriber.objects.get(pk=subscriber.pk).status


def test_the_mailto_a_campaign_message_names_unsubscribes_its_recipient(mailbox, reader):
    message = campaign_message_to(reader)
    address, subject = mailto_of(message)
    assert address == "unsubscribe@acme-mail.test" and subject.startswith("unsubscribe ")

    send_to_mailbox(mailbox, sender="ann@example.org", to=address, subject=subject, body="")
    result = read_bounce_mailbox()

    assert (result["read"], result["unsubscribed"], result["ignored"]) == (1, 1, 0)
    assert status_of(reader) == Subscriber.Status.UNSUBSCRIBED
    assert ListMembership.objects.get(subscriber=reader).status == ListMembership.Status.UNSUBSCRIBED
    entry = AuditEntry.objects.get(subscriber_id=reader.pk, action=AuditEntry.Action.UNSUBSCRIBE)
    assert "List-Unsubscribe address" in entry.changes["method"] and "campaign" in entry.changes["method"]
    assert len(list((mailbox.store.directory / "processed").glob("*.eml"))) == 1

    # The client sends it twice: nothing more changes, and the mailbox is not read again.
    send_to_mailbox(mailbox, sender="ann@example.org", to=address, subject=subject)
    assert read_bounce_mailbox()["unsubscribed"] == 1
    assert AuditEntry.objects.filter(subscriber_id=reader.pk, action=AuditEntry.Action.UNSUBSCRIBE).count() == 1
    assert read_bounce_mailbox().get("read") == 0


def test_the_token_decides_even_when_the_message_is_forwarded_from_another_address(mailbox, reader):
    address, subject = mailto_of(campaign_message_to(reader))
    send_to_mailbox(mailbox, sender="ann.at.work@example.com", to=address, subject=f"Re: {subject}")
    assert read_bounce_mailbox()["unsubscribed"] == 1
    assert status_of(reader) == Subscriber.Status.UNSUBSCRIBED


def test_a_hand_written_request_matches_the_sender_in_workspaces_sending_from_that_domain(mailbox, reader, team):
    SenderFactory(workspace=team.a, email="news@acme-mail.test")
    namesake = SubscriberFactory(workspace=team.b, email="ann@example.org")
    send_to_mailbox(mailbox, sender="Ann <ANN@example.org>", to="unsubscribe@acme-mail.test", subject="stop")

    assert read_bounce_mailbox()["unsubscribed"] == 1
    assert status_of(reader) == Subscriber.Status.UNSUBSCRIBED
    # Workspace B does not send from that domain: its subscriber of the same address stays.
    assert status_of(namesake) == Subscriber.Status.ACTIVE


def test_a_forged_token_or_an_unknown_sender_unsubscribes_nobody(mailbox, reader):
    address, subject = mailto_of(campaign_message_to(reader))
    forged = subject[:-3] + ("AAA" if not subject.endswith("AAA") else "BBB")
    send_to_mailbox(mailbox, sender="mallory@example.net", to=address, subject=forged)
    send_to_mailbox(mailbox, sender="nobody@example.net", to="unsubscribe@unknown-domain.test", subject="unsubscribe")

    result = read_bounce_mailbox()
    assert (result["read"], result["unsubscribed"], result["unmatched"]) == (2, 0, 2)
    assert status_of(reader) == Subscriber.Status.ACTIVE


def test_auto_replies_and_mail_to_other_addresses_are_set_aside(mailbox, reader):
    address, subject = mailto_of(campaign_message_to(reader))
    send_to_mailbox(mailbox, sender="ann@example.org", to=address, subject=subject, Auto_Submitted="auto-replied")
    send_to_mailbox(mailbox, sender="ann@example.org", to="news@acme-mail.test", subject=subject)

    result = read_bounce_mailbox()
    assert (result["read"], result["unsubscribed"], result["ignored"]) == (2, 0, 2)
    assert status_of(reader) == Subscriber.Status.ACTIVE
    assert len(list((mailbox.store.directory / "ignored").glob("*.eml"))) == 2


def test_a_shared_unsubscribe_domain_is_used_and_the_token_still_names_the_subscriber(mailbox, reader, settings):
    settings.LIST_UNSUBSCRIBE_MAILTO_DOMAIN = "unsub.herald.test"
    address, subject = mailto_of(campaign_message_to(reader))
    assert address == "unsubscribe@unsub.herald.test"

    send_to_mailbox(mailbox, sender="ann@example.org", to=address, subject=subject)
    assert read_bounce_mailbox()["unsubscribed"] == 1
    assert status_of(reader) == Subscriber.Status.UNSUBSCRIBED


def test_the_parser_reads_encoded_subjects_and_the_plain_to_header():
    raw = (
        b"From: =?utf-8?q?Ann_=C3=89xample?= <ann@example.org>\r\n"
        b"To: Unsubscribe <Unsubscribe+list@Acme-Mail.test>\r\n"
        b"Subject: =?utf-8?q?unsubscribe_.eJyLVjI0MtYxNDAyUQIADCMCBQ:1tLq2V:"
        b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG?=\r\n"
        b"\r\nthanks\r\n"
    )
    parsed = parse_unsubscribe_mail(raw)
    assert parsed.sender == "ann@example.org" and parsed.recipient == "unsubscribe+list@acme-mail.test"
    assert parsed.recipient_domain == "acme-mail.test"
    assert parsed.tokens == (".eJyLVjI0MtYxNDAyUQIADCMCBQ:1tLq2V:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",)
    assert parse_unsubscribe_mail(raw.replace(b"Unsubscribe+list@", b"news@")) is None
