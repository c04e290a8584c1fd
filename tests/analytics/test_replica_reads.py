"""Reports against a real streaming standby: read there while it keeps up, from the primary when it
lags past REPLICA_MAX_LAG_SECONDS or is down."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.local_services import LocalPostgres, service_tempdir

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

SEED = """
import django; django.setup()
from accounts.models import Member, User, Workspace
from analytics.models import CampaignRollup
from campaigns.models import Campaign
ws = Workspace.objects.create(name="Replica", slug="replica")
user = User.objects.create_user(email="r@replica.test", password="replica-password-1")
member = Member.objects.create(workspace=ws, user=user, role="owner")
campaign = Campaign.objects.create(workspace=ws, name="Standby", subject="s", status="sent")
CampaignRollup.objects.create(campaign=campaign, workspace=ws, sent=10, delivered=9, unique_opens=3)
print(member.pk, campaign.pk)
"""
REPORT = """
import django, json; django.setup()
from django.core.cache import cache
from accounts.models import Member
from analytics import selectors
cache.clear()
member = Member.objects.get(pk={member})
figures = selectors.campaign_report(member=member, campaign_id={campaign})
print(json.dumps({{"source": figures.source, "sent": figures.data["totals"]["sent"]}}))
"""


def run(code: str, **env) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "ANALYTICS_REPORT_CACHE_SECONDS": "0", "REPLICA_MAX_LAG_SECONDS": "2", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def primary_and_standby():
    directory = service_tempdir("herald-analytics-replica-")
    primary = LocalPostgres(directory / "primary").start(fast_and_unsafe=True)
    standby = LocalPostgres(directory / "standby")
    try:
        standby.initialise_as_standby_of(primary)
        standby.start()
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()


def test_reports_read_the_standby_and_fall_back_to_the_primary(primary_and_standby):
    primary, standby = primary_and_standby
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": primary.url},
        check=True,
        timeout=300,
    )
    member, campaign = run(SEED, DATABASE_URL=primary.url).split()
    deadline = time.monotonic() + 20
    query = f"SELECT count(*) FROM analytics_campaignrollup WHERE campaign_id = {int(campaign)}"  # noqa: S608
    while standby.psql(query, "herald") != "1":
        assert time.monotonic() < deadline, "the standby never replayed the seed"
        time.sleep(0.2)
    report = REPORT.format(member=int(member), campaign=int(campaign))
    both = {"DATABASE_URL": primary.url, "DATABASE_REPLICA_URL": standby.url}

    assert json.loads(run(report, **both)) == {"source": "replica", "sent": 10}

    # Replay paused and the primary moving on: the standby falls behind and reports read the primary.
    standby.psql("SELECT pg_wal_replay_pause()")
    try:
        primary.psql(f"UPDATE analytics_campaignrollup SET sent = 11 WHERE campaign_id = {int(campaign)}", "herald")  # noqa: S608
        time.sleep(3)
        assert json.loads(run(report, **both)) == {"source": "primary", "sent": 11}
    finally:
        standby.psql("SELECT pg_wal_replay_resume()")

    standby.stop()
    try:
        assert json.loads(run(report, **both)) == {"source": "primary", "sent": 11}
    finally:
        standby.start()
