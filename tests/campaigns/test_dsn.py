"""Bounce and complaint reports arriving by email: RFC 3464 DSNs, RFC 5965 ARF, old plain-text bounces."""

import pytest

from campaigns.lib.dsn import parse_bounce

TOKEN = "AQPSCbHR-dYDeBawXFa_0Bx5lMxBaKq3h0BLyP0"

ORIGINAL_HEADERS = f"""From: "Acme News" <news@acme.test>
To: "Ada Lovelace" <ada@example.com>
Subject: Spring sale
Date: Tue, 01 Dec 2026 10:00:00 GMT
Message-ID: <herald.7.42@mail.acme.test>
List-Unsubscribe: <https://herald.test/u/UNSUB/>
X-Herald-Delivery: {TOKEN}
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
"""


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def postfix_dsn(*, action="failed", status="5.1.1", diagnostic="smtp; 550 5.1.1 <ada@example.com>: Recipient"
                " address rejected: User unknown in virtual mailbox table", original="rfc822") -> bytes:  # fmt: skip
    if original == "rfc822":
        original_part = (
            "Content-Description: Undelivered Message\n"
            "Content-Type: message/rfc822\n\n" + ORIGINAL_HEADERS + "\nHello Ada,\nour spring sale starts now.\n"
        )
    else:
        original_part = (
            "Content-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n" + ORIGINAL_HEADERS
        )
    return crlf(
        f"""Return-Path: <>
Received: by mx.herald.test (Postfix) id 4Zb3k; Tue,  1 Dec 2026 10:00:05 +0000 (UTC)
Date: Tue,  1 Dec 2026 10:00:05 +0000 (UTC)
From: MAILER-DAEMON@mx.herald.test (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces@herald.test
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4Zb3k.1796119205/mx.herald.test"
Message-Id: <20261201100005.4Zb3k@mx.herald.test>

This is a MIME-encapsulated message.

--4Zb3k.1796119205/mx.herald.test
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.herald.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<ada@example.com>: host mx.example.com[192.0.2.10] said: 550 5.1.1
    <ada@example.com>: Recipient address rejected: User unknown

--4Zb3k.1796119205/mx.herald.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.herald.test
X-Postfix-Queue-ID: 4Zb3k
X-Postfix-Sender: rfc822; bounces@herald.test
Arrival-Date: Tue,  1 Dec 2026 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; ada@example.com
Original-Recipient: rfc822;ada@example.com
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.com
Diagnostic-Code: {diagnostic}

--4Zb3k.1796119205/mx.herald.test
{original_part}
--4Zb3k.1796119205/mx.herald.test--
"""
    )


GMAIL_DSN = crlf(
    f"""Delivered-To: bounces@herald.test
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounces@herald.test
Subject: Delivery Status Notification (Delay)
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000b1c2"; report-type=delivery-status

--000000000000b1c2
Content-Type: multipart/related; boundary="000000000000b1c3"

--000000000000b1c3
Content-Type: text/html; charset="UTF-8"

<html><body>Delivery incomplete. There was a temporary problem delivering your message to
<b>ada@example.com</b>. Gmail will retry for 47 more hours.</body></html>

--000000000000b1c3--

--000000000000b1c2
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Arrival-Date: Tue, 01 Dec 2026 02:00:00 -0800 (PST)

Final-Recipient: rfc822; ada@example.com
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 The recipient's inbox is out of storage space.
Last-Attempt-Date: Tue, 01 Dec 2026 02:30:00 -0800 (PST)
Will-Retry-Until: Thu, 03 Dec 2026 02:00:00 -0800 (PST)

--000000000000b1c2
Content-Type: message/rfc822

{ORIGINAL_HEADERS}
Hello Ada

--000000000000b1c2--
"""
)


ARF_COMPLAINT = crlf(
    f"""From: <staff@hotmail.test>
Date: Tue, 01 Dec 2026 12:00:00 +0000
Subject: complaint about message from 192.0.2.1
To: <abuse@herald.test>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Tue, 01 Dec 2026 10:00:00 +0000.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounces@herald.test>
Original-Rcpt-To: <ada@example.com>
Arrival-Date: Tue, 01 Dec 2026 10:00:00 +0000
Reporting-MTA: dns; mail.hotmail.test
Source-IP: 192.0.2.1
Authentication-Results: mail.hotmail.test; spf=pass smtp.mail.from=bounces@herald.test

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

{ORIGINAL_HEADERS}
Hello Ada, our spring sale starts now.

--part1_13d.2e68ed54_boundary--
"""
)


def test_a_hard_bounce_from_postfix():
    report = parse_bounce(postfix_dsn())
    assert report.kind == "bounce"
    assert report.hard is True
    assert report.recipient == "ada@example.com"
    assert (report.action, report.status) == ("failed", "5.1.1")
    assert "User unknown in virtual mailbox table" in report.diagnostic
    assert report.delivery_token == TOKEN
    assert report.original_message_id == "<herald.7.42@mail.acme.test>"
    assert report.reporting_mta == "mx.herald.test"


def test_the_token_is_found_in_included_headers_only():
    report = parse_bounce(postfix_dsn(original="headers"))
    assert report.delivery_token == TOKEN
    assert report.original_message_id == "<herald.7.42@mail.acme.test>"


def test_a_soft_bounce_is_not_hard():
    report = parse_bounce(GMAIL_DSN)
    assert report.kind == "bounce"
    assert report.hard is False
    assert (report.action, report.status) == ("delayed", "4.2.2")
    assert report.recipient == "ada@example.com"
    assert report.delivery_token == TOKEN


@pytest.mark.parametrize(
    "status,diagnostic,hard",
    [
        ("5.7.1", "smtp; 550 5.7.1 Message rejected as spam", True),
        ("4.4.1", "smtp; 421 4.4.1 Connection timed out", False),
        ("5.0.0", "X-Postfix; host not found", True),
        ("", "smtp; 554 Transaction failed", True),
        ("", "smtp; 451 Try again later", False),
    ],
)
def test_hard_is_5xx_and_soft_is_4xx(status, diagnostic, hard):
    report = parse_bounce(postfix_dsn(status=status, diagnostic=diagnostic))
    assert report.hard is hard
    assert report.status[0] == ("5" if hard else "4")


def test_a_success_notification_is_not_a_bounce():
    assert parse_bounce(postfix_dsn(action="delivered", status="2.0.0", diagnostic="smtp; 250 2.0.0 OK")) is None


def test_an_arf_complaint():
    report = parse_bounce(ARF_COMPLAINT)
    assert report.kind == "complaint" and report.is_complaint
    assert report.hard is False
    assert report.recipient == "ada@example.com"
    assert report.feedback_type == "abuse"
    assert report.delivery_token == TOKEN
    assert report.original_message_id == "<herald.7.42@mail.acme.test>"
    assert "SomeGenerator" in report.diagnostic


def test_a_redacted_complaint_still_carries_the_token():
    redacted = ARF_COMPLAINT.replace(b"Original-Rcpt-To: <ada@example.com>\r\n", b"").replace(
        b'To: "Ada Lovelace" <ada@example.com>', b"To: redacted@hotmail.test"
    )
    report = parse_bounce(redacted)
    assert report.recipient == "redacted@hotmail.test"
    assert report.delivery_token == TOKEN


def test_a_not_spam_report_is_not_a_complaint():
    assert parse_bounce(ARF_COMPLAINT.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")) is None


QMAIL_BOUNCE = crlf(
    f"""Return-Path: <>
From: MAILER-DAEMON@mail.oldhost.test
To: bounces@herald.test
Subject: failure notice

Hi. This is the qmail-send program at mail.oldhost.test.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<bob@oldhost.test>:
192.0.2.20 does not like recipient.
Remote host said: 550 sorry, no mailbox here by that name (#5.7.17)
Giving up on 192.0.2.20.

--- Below this line is a copy of the message.

{ORIGINAL_HEADERS}
Prices from 250 dollars; call 404 555 0100.
"""
)


def test_an_old_style_plain_text_bounce():
    report = parse_bounce(QMAIL_BOUNCE)
    assert report.kind == "bounce"
    assert report.hard is True
    assert report.recipient == "bob@oldhost.test"
    assert report.delivery_token == TOKEN
    assert "550" in report.diagnostic


@pytest.mark.parametrize(
    "message",
    [
        crlf("From: ada@example.com\nTo: news@acme.test\nSubject: Re: Spring sale\n\nThanks, 550 of them please!\n"),
        crlf(
            "From: ada@example.com\nTo: news@acme.test\nSubject: Out of office\nAuto-Submitted: auto-replied\n\nAway.\n"
        ),
        crlf("From: MAILER-DAEMON@x.test\nSubject: Undelivered Mail\n\nno codes and no addresses here\n"),
        b"",
        b"\x00\xff garbage \r\n\r\n\xfe",
    ],
)
def test_other_mail_is_not_a_report(message):
    assert parse_bounce(message) is None


def test_a_report_for_a_message_herald_did_not_send_has_no_token():
    report = parse_bounce(postfix_dsn().replace(f"X-Herald-Delivery: {TOKEN}\r\n".encode(), b""))
    assert report.hard is True
    assert report.delivery_token is None
    assert report.recipient == "ada@example.com"
