"""Run inside the drill cluster's environment: create a campaign audience and start sending.

    python -m tests.drills.campaign_setup --recipients 20000 --relay 10:PORT --relay 20:PORT

Prints one JSON line: {"campaign_id": ..., "recipients": ...}. The drills run it as a
subprocess with the cluster's settings (its database through HAProxy, its broker), so the
campaign is started exactly as the dashboard would start it.
"""

from __future__ import annotations

import argparse
import json
import uuid

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Workspace  # noqa: E402
from campaigns import services  # noqa: E402
from campaigns.models import Relay, Sender  # noqa: E402
from subscribers.models import MailingList  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, required=True)
    parser.add_argument("--relay", action="append", default=[], help="PRIORITY:PORT of a relay on 127.0.0.1")
    parser.add_argument("--batch-tag", default=uuid.uuid4().hex[:6])
    arguments = parser.parse_args()

    tag = arguments.batch_tag
    workspace = Workspace.objects.create(name=f"Drill {tag}", slug=f"drill-{tag}")
    mailing_list = MailingList.objects.create(workspace=workspace, name="Everyone")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO subscribers_subscriber
                (workspace_id, email, name, attributes, status, source, consent_method, consent_text,
                 created_at, updated_at)
            SELECT %s, 'drill' || n || '@' || %s || '.example', 'Drill ' || n, jsonb_build_object('n', n),
                   'active', 'drill', '', '', now(), now()
            FROM generate_series(1, %s) AS n
            """,
            [workspace.pk, tag, arguments.recipients],
        )
        cursor.execute(
            """
            INSERT INTO subscribers_listmembership
                (workspace_id, mailing_list_id, subscriber_id, status, subscribed_at, created_at, updated_at)
            SELECT %s, %s, id, 'confirmed', now(), now(), now() FROM subscribers_subscriber WHERE workspace_id = %s
            """,
            [workspace.pk, mailing_list.pk, workspace.pk],
        )
    for number, spec in enumerate(arguments.relay, start=1):
        priority, port = (int(part) for part in spec.split(":"))
        Relay.objects.create(
            workspace=workspace, name=f"relay{number}", host="127.0.0.1", port=port, tls_mode="none", priority=priority
        )
    sender = Sender.objects.create(
        workspace=workspace, email=f"news@{tag}.example", name="Drill news", verified_at=timezone.now()
    )
    campaign = services.campaign_create(
        workspace=workspace,
        actor=None,
        name=f"Drill {tag}",
        subject="Hello {{ subscriber.name }} (#{{ subscriber.n }})",
        html='<p>Dear {{ subscriber.name }}, <a href="https://example.com/drill">read on</a>.</p>',
        text="",
        sender_id=sender.pk,
        list_ids=[mailing_list.pk],
    )
    services.campaign_schedule(campaign=campaign)
    print(json.dumps({"campaign_id": campaign.pk, "recipients": arguments.recipients}), flush=True)


if __name__ == "__main__":
    main()
