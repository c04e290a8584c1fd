"""Run inside the drill cluster's environment: a sent campaign with links and deliveries for click load.

    python -m tests.drills.tracking_setup --deliveries 200

Prints one JSON line: {"campaign_id": ..., "paths": ["/t/c/<token>/0", ...]}.
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import timedelta

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Workspace  # noqa: E402
from campaigns.lib.tracking import make_delivery_token  # noqa: E402
from campaigns.models import Campaign, CampaignLink, Delivery  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=200)
    arguments = parser.parse_args()
    tag = uuid.uuid4().hex[:6]
    workspace = Workspace.objects.create(name=f"Tracking drill {tag}", slug=f"tracking-drill-{tag}")
    campaign = Campaign.objects.create(workspace=workspace, name="Tracking drill", subject="Drill", status="sent")
    CampaignLink.objects.create(campaign=campaign, position=0, url="https://example.com/drill")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO campaigns_delivery (workspace_id, campaign_id, email, status, attempts, leased_by,
                   smtp_response, message_id, sent_at, created_at, updated_at)
               SELECT %s, %s, 'd' || n || '@' || %s || '.example', 'sent', 1, '', '', '', %s, now(), now()
               FROM generate_series(1, %s) n""",
            [workspace.pk, campaign.pk, tag, timezone.now() - timedelta(hours=1), arguments.deliveries],
        )
    paths = [
        f"/t/c/{make_delivery_token(workspace_id=workspace.pk, campaign_id=campaign.pk, delivery_id=pk)}/0"
        for pk in Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True)
    ]
    print(json.dumps({"campaign_id": campaign.pk, "paths": paths}), flush=True)


if __name__ == "__main__":
    main()
