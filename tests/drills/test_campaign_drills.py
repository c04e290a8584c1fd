"""Campaign drills on the shared cluster: a 20,000-recipient campaign while part of it breaks.

`make drill` sends 20,000 recipients each; `make test` runs the same drills with 5,000
(DRILL_CAMPAIGN_RECIPIENTS) to keep the whole suite within its time budget.

Each drill starts a campaign through the cluster (its database behind HAProxy, its broker, its
two workers and beat), sends to two SMTP sinks acting as the primary (priority 10) and the
secondary (priority 20) relay, breaks one thing mid-campaign and then checks the sinks against
the ledger: every recipient has exactly one message except at most the stated bound of
duplicates, none is missing, and every sent row's Message-ID is in a sink.

    DRILL name: recipients=N delivered=N missing=N duplicates=N recovery_s=X

Duplicate bounds (messages that left before their outcome could be written):
    worker kill        SEND_BATCH_SIZE x the killed worker's concurrency (200 x 1): the batch in
                       flight is handed out again when its lease runs out
    Postgres primary   SEND_BATCH_SIZE x workers (2 x 200); outcome writes are retried across the
                       failover, so normally none
    relay refusing     one per worker connection (2): a message the relay took as the link was cut
    relay 421          none: 421 comes before DATA, nothing was accepted
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from email import policy
from pathlib import Path

import psycopg
import pytest

from common.smtp_sink import SmtpSink
from tests.drills.cluster import REPO, DrillResult

pytestmark = pytest.mark.drill

RECIPIENTS = int(os.environ.get("DRILL_CAMPAIGN_RECIPIENTS", "20000"))
BATCH_SIZE = 200  # the cluster runs with the default SEND_BATCH_SIZE
WORKERS = 2
FINISH_TIMEOUT = 600


@dataclass
class CampaignDrillResult(DrillResult):
    delivered: int = 0
    duplicates: int = 0

    @property
    def line(self) -> str:
        return (
            f"DRILL {self.name}: recipients={self.requests} delivered={self.delivered} missing={self.failed} "
            f"duplicates={self.duplicates} recovery_s={self.recovery_s:.1f}"
        )


class CampaignRun:
    def __init__(self, cluster, directory: Path):
        self.cluster = cluster
        self.primary = SmtpSink(directory / "primary").start()
        self.secondary = SmtpSink(directory / "secondary").start()
        self.campaign_id: int | None = None

    def stop(self) -> None:
        self.primary.stop()
        self.secondary.stop()

    def start(self) -> int:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.drills.campaign_setup",
                "--recipients",
                str(RECIPIENTS),
                "--relay",
                f"10:{self.primary.port}",
                "--relay",
                f"20:{self.secondary.port}",
            ],
            cwd=REPO,
            env={**os.environ, **self.cluster.stack.app_environment()},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        self.campaign_id = json.loads(result.stdout.strip().splitlines()[-1])["campaign_id"]
        return self.campaign_id

    def query(self, sql: str, *params):
        with self.cluster.database() as connection:
            return connection.execute(sql, params).fetchall()

    def counts(self) -> dict[str, int]:
        rows = self.query(
            "SELECT status, count(*) FROM campaigns_delivery WHERE campaign_id = %s GROUP BY status", self.campaign_id
        )
        return dict(rows)

    def sent(self) -> int:
        """Rows sent so far; -1 while the database cannot be reached (a failover in progress)."""
        try:
            return self.counts().get("sent", 0)
        except psycopg.Error:
            return -1

    def status(self) -> str:
        try:
            return self.query("SELECT status FROM campaigns_campaign WHERE id = %s", self.campaign_id)[0][0]
        except psycopg.Error:
            return ""

    def wait_sent_at_least(self, count: int, timeout: float = 300) -> None:
        self.cluster.wait_for(lambda: self.sent() >= count, timeout, f"{count} messages sent", 0.5)

    def wait_finished(self) -> None:
        self.cluster.wait_for(lambda: self.status() == "sent", FINISH_TIMEOUT, "the campaign finishing", 1.0)

    def sink_message_ids(self) -> list[str]:
        found = []
        for sink in (self.primary, self.secondary):
            for name in sink.store.names():
                with open(sink.store.messages_dir / name, "rb") as handle:
                    head = handle.read(16384).split(b"\r\n\r\n", 1)[0]
                found.append(email.message_from_bytes(head, policy=policy.compat32)["Message-ID"].strip())
        return found

    def verdict(self, name: str, recovery: float, duplicate_bound: int, expectation: str) -> CampaignDrillResult:
        self.wait_finished()
        arrived = self.sink_message_ids()
        ledger = dict(
            self.query("SELECT message_id, status FROM campaigns_delivery WHERE campaign_id = %s", self.campaign_id)
        )
        unique = set(arrived)
        sent_ids = {message_id for message_id, status in ledger.items() if status == "sent"}
        missing = len(sent_ids - unique) + (RECIPIENTS - len(sent_ids))
        duplicates = len(arrived) - len(unique)
        strangers = unique - set(ledger)  # messages the ledger knows nothing about
        passed = missing == 0 and duplicates <= duplicate_bound and not strangers and len(ledger) == RECIPIENTS
        return CampaignDrillResult(
            name=name,
            requests=RECIPIENTS,
            failed=missing,
            recovery_s=recovery,
            lost_writes=missing,
            expectation=expectation,
            passed=passed,
            delivered=len(unique & sent_ids),
            duplicates=duplicates,
        )


@pytest.fixture
def campaign_run(healthy_cluster, tmp_path):
    run = CampaignRun(healthy_cluster, tmp_path)
    yield run
    if run.campaign_id is not None:
        # Leave the cluster idle for the next drill whatever happened here.
        healthy_cluster.restore()
        # Best effort: the drill's own assertions already reported what went wrong.
        with contextlib.suppress(Exception):
            run.query(
                "UPDATE campaigns_campaign SET status = 'cancelled' WHERE id = %s AND status <> 'sent'", run.campaign_id
            )
    run.stop()


def check(result: CampaignDrillResult, bound: int) -> None:
    assert result.failed == 0, f"{result.line}: recipients without a message"
    assert result.duplicates <= bound, f"{result.line}: more duplicates than the bound {bound}"
    assert result.passed, result.line


def test_worker1_sigkill_mid_campaign(campaign_run, report):
    run = campaign_run
    run.start()
    run.wait_sent_at_least(RECIPIENTS // 6)
    killed_at = time.monotonic()
    run.cluster.kill("worker1", "KILL")
    # Read after the kill: the batch the dead worker held is among the rows still leased.
    in_flight = [
        row[0]
        for row in run.query(
            "SELECT id FROM campaigns_delivery WHERE campaign_id = %s AND status = 'sending'", run.campaign_id
        )
    ]
    # Recovered when every row leased at the kill (the dead worker's batch among them) is settled.
    run.cluster.wait_for(
        lambda: (
            not run.query(
                "SELECT 1 FROM campaigns_delivery WHERE id = ANY(%s) AND status IN ('sending', 'queued') LIMIT 1",
                in_flight,
            )
        ),
        FINISH_TIMEOUT,
        "the killed worker's batch being sent again",
        0.5,
    )
    recovery = time.monotonic() - killed_at
    bound = BATCH_SIZE * 1
    result = report(run.verdict("campaign_worker1_sigkill", recovery, bound, f"none missing, <= {bound} duplicates"))
    check(result, bound)


def test_postgres_primary_sigkill_mid_campaign(campaign_run, report):
    run = campaign_run
    run.start()
    run.wait_sent_at_least(RECIPIENTS // 6)
    primary = run.cluster.stack.primary_name()
    before = run.sent()
    killed_at = time.monotonic()
    run.cluster.kill(primary, "KILL")
    # Recovered when batches claimed after the failover are settled on the new primary.
    run.cluster.wait_for(
        lambda: run.sent() > before + 2 * BATCH_SIZE * WORKERS,
        FINISH_TIMEOUT,
        "sending resuming on the new primary",
        0.5,
    )
    recovery = time.monotonic() - killed_at
    bound = BATCH_SIZE * WORKERS
    result = report(
        run.verdict("campaign_postgres_primary_sigkill", recovery, bound, f"none missing, <= {bound} duplicates")
    )
    assert run.cluster.stack.primary_name() not in (None, primary)
    check(result, bound)


def test_primary_relay_refuses_connections_mid_campaign(campaign_run, report):
    run = campaign_run
    run.start()
    run.wait_sent_at_least(RECIPIENTS // 6)
    before = run.secondary.count()
    broken_at = time.monotonic()
    run.primary.set_behaviour("refuse")
    run.cluster.wait_for(lambda: run.secondary.count() >= before + 100, 120, "traffic moving to the secondary", 0.2)
    recovery = time.monotonic() - broken_at
    bound = WORKERS
    result = report(run.verdict("campaign_relay_refused", recovery, bound, f"none missing, <= {bound} duplicates"))
    check(result, bound)


def test_primary_relay_answers_421_for_a_while(campaign_run, report):
    run = campaign_run
    run.start()
    run.wait_sent_at_least(RECIPIENTS // 6)
    before = run.secondary.count()
    broken_at = time.monotonic()
    run.primary.set_behaviour("tempfail")
    run.cluster.wait_for(lambda: run.secondary.count() >= before + 100, 120, "traffic moving to the secondary", 0.2)
    recovery = time.monotonic() - broken_at
    time.sleep(max(0.0, 20 - (time.monotonic() - broken_at)))
    run.primary.set_behaviour("accept")
    result = report(run.verdict("campaign_relay_421", recovery, 0, "none missing, no duplicates"))
    check(result, 0)
