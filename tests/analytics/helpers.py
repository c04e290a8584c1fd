"""Helpers for analytics tests: a sent campaign with links and deliveries, tracked URLs, draining."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from analytics import tasks
from campaigns.lib.tracking import make_delivery_token
from campaigns.models import CampaignLink, Delivery
from tests.factories import CampaignFactory, SubscriberFactory

LINKS = ["https://example.com/a", "https://example.com/b?x=1", "https://shop.example.com/sale"]
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)


def sent_campaign(*, workspace, recipients: int = 3, links=LINKS, sent_ago: timedelta = timedelta(minutes=5), **fields):
    campaign = CampaignFactory(workspace=workspace, status="sent", **fields)
    for position, url in enumerate(links):
        CampaignLink.objects.create(campaign=campaign, position=position, url=url)
    sent_at = timezone.now() - sent_ago
    deliveries = [
        Delivery.objects.create(
            workspace=workspace,
            campaign=campaign,
            subscriber=SubscriberFactory(workspace=workspace),
            email=f"r{i}-{campaign.pk}@example.org",
            status="sent",
            sent_at=sent_at,
            smtp_code=250,
        )
        for i in range(recipients)
    ]
    return campaign, deliveries


def token_for(delivery) -> str:
    return make_delivery_token(
        workspace_id=delivery.workspace_id, campaign_id=delivery.campaign_id, delivery_id=delivery.pk
    )


def click(delivery, position: int, *, ua: str = BROWSER, ip: str = "203.0.113.9"):
    return Client(HTTP_USER_AGENT=ua, REMOTE_ADDR=ip).get(f"/t/c/{token_for(delivery)}/{position}")


def open_(delivery, *, ua: str = BROWSER, ip: str = "203.0.113.9"):
    return Client(HTTP_USER_AGENT=ua, REMOTE_ADDR=ip).get(f"/t/o/{token_for(delivery)}.gif")


def drain() -> int:
    return tasks.drain_stream(budget_seconds=10)
