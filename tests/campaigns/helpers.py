"""Helpers for campaign tests: big audiences in one statement, relays on local sinks, waiting."""

from __future__ import annotations

import email
import time
from email import policy

from django.db import connection

from campaigns.models import Campaign, Delivery, Relay
from common.smtp_sink import SmtpSink
from subscribers.models import MailingList

# Worker settings that make retries and circuit cool-downs fit in a test.
FAST_WORKER_ENV = {
    "SEND_BATCH_SIZE": "50",
    "SEND_LEASE_SECONDS": "20",
    "SEND_RETRY_BASE_SECONDS": "1",
    "RELAY_CIRCUIT_OPEN_SECONDS": "2",
    "RELAY_CIRCUIT_FAILURES": "3",
}


def make_audience(*, workspace, count: int, name: str = "Everyone", prefix: str = "person") -> MailingList:
    """A list of `count` confirmed, active subscribers, written with two set-based statements."""
    mailing_list = MailingList.objects.create(workspace=workspace, name=name)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO subscribers_subscriber
                (workspace_id, email, name, attributes, status, source, consent_method, consent_text,
                 created_at, updated_at)
            SELECT %s, %s || n || '@example.org', 'Person ' || n || ' Doe', jsonb_build_object('n', n),
                   'active', 'test', '', '', now(), now()
            FROM generate_series(1, %s) AS n
            ON CONFLICT (workspace_id, email) DO NOTHING
            """,
            [workspace.pk, prefix, count],
        )
        cursor.execute(
            """
            INSERT INTO subscribers_listmembership
                (workspace_id, mailing_list_id, subscriber_id, status, subscribed_at, created_at, updated_at)
            SELECT %s, %s, s.id, 'confirmed', now(), now(), now()
            FROM subscribers_subscriber s WHERE s.workspace_id = %s AND s.email LIKE %s
            """,
            [workspace.pk, mailing_list.pk, workspace.pk, f"{prefix}%"],
        )
    return mailing_list


def relay_for(sink: SmtpSink, *, workspace, name: str, priority: int = 10, **fields) -> Relay:
    return Relay.objects.create(
        workspace=workspace, name=name, host=sink.host, port=sink.port, tls_mode="none", priority=priority, **fields
    )


def wait_for(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition", tick=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick:
            tick()
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}")


def campaign_status(campaign: Campaign) -> str:
    return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).get()


def ledger_counts(campaign: Campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Delivery.objects.filter(campaign=campaign).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def sink_deliveries(*sinks: SmtpSink) -> list[tuple[str, str]]:
    """(recipient, X-Herald-Delivery token) of every message the sinks hold, headers only."""
    found = []
    for sink in sinks:
        for name in sink.store.names():
            with open(sink.store.messages_dir / name, "rb") as handle:
                head = handle.read(8192).split(b"\r\n\r\n", 1)[0]
            message = email.message_from_bytes(head, policy=policy.compat32)
            found.append((message["X-Sink-Rcpt-To"], message["Message-ID"]))
    return found
