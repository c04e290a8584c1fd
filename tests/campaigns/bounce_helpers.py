"""Campaigns already sent, for bounce and complaint tests: ledger rows as the pipeline leaves them."""

from __future__ import annotations

from django.db import connection

from campaigns.lib.message import make_message_id
from campaigns.lib.tracking import make_delivery_token
from campaigns.models import Campaign, Delivery
from campaigns.sending import deliveries_snapshot
from tests.campaigns.helpers import make_audience
from tests.factories import CampaignFactory


def sent_campaign(*, workspace, count: int, prefix: str = "person", status: str = "sending") -> Campaign:
    """A campaign whose `count` deliveries were all accepted by the relay (status sent)."""
    audience = make_audience(workspace=workspace, count=count, name=f"Audience {prefix}", prefix=prefix)
    campaign = CampaignFactory(workspace=workspace, status=status)
    campaign.lists.set([audience])
    deliveries_snapshot(campaign=campaign)
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE campaigns_delivery
               SET status = 'sent', attempts = 1, sent_at = now(),
                   message_id = '<herald.' || campaign_id || '.' || id || '@sender.test>'
               WHERE campaign_id = %s""",
            [campaign.pk],
        )
    Campaign.objects.filter(pk=campaign.pk).update(recipient_count=count, sent_count=count)
    campaign.refresh_from_db()
    return campaign


def delivery_of(campaign: Campaign, email: str | None = None) -> Delivery:
    deliveries = Delivery.objects.filter(campaign=campaign).order_by("id")
    return deliveries.get(email=email) if email else deliveries.first()


def token_of(delivery: Delivery) -> str:
    return make_delivery_token(
        workspace_id=delivery.workspace_id, campaign_id=delivery.campaign_id, delivery_id=delivery.pk
    )


def message_id_of(delivery: Delivery) -> str:
    return make_message_id(delivery_id=delivery.pk, campaign_id=delivery.campaign_id, domain="sender.test")


def dsn_for(delivery: Delivery, *, status: str = "5.1.1", action: str = "failed", with_token: bool = True) -> bytes:
    """An RFC 3464 report about the delivery, as Postfix writes it, with the original's headers."""
    token_line = f"X-Herald-Delivery: {token_of(delivery)}\n" if with_token else ""
    text = f"""From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: bounces@sender.test
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain

Your message could not be delivered.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; {delivery.email}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {status[0]}50 {status} mailbox unavailable

--BOUNDARY
Content-Type: text/rfc822-headers

From: Newsletter <news@sender.test>
To: {delivery.email}
Subject: News
Message-ID: {delivery.message_id}
{token_line}
--BOUNDARY--
"""
    return text.replace("\n", "\r\n").encode()


def arf_for(delivery: Delivery) -> bytes:
    text = f"""From: feedback@isp.example
To: abuse@sender.test
Subject: Complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B2"

--B2
Content-Type: text/plain

An abuse report.

--B2
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ISP-FBL/1.0
Version: 1
Original-Rcpt-To: {delivery.email}

--B2
Content-Type: text/rfc822-headers

Message-ID: {delivery.message_id}
X-Herald-Delivery: {token_of(delivery)}

--B2--
"""
    return text.replace("\n", "\r\n").encode()
