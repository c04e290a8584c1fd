"""/health with a real streaming standby: its lag is reported, and a standby as primary is caught."""

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
CHECK = "import json, django; django.setup(); from operations.health import check_all; print(json.dumps(check_all()))"


@pytest.fixture(scope="module")
def primary_and_standby():
    directory = service_tempdir("herald-replica-")
    primary = LocalPostgres(directory / "primary").start(fast_and_unsafe=True)
    standby = LocalPostgres(directory / "standby")
    try:
        standby.initialise_as_standby_of(primary)
        standby.start()
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()


def health_with(**env) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_standby_is_reported_with_its_replication_lag(primary_and_standby):
    primary, standby = primary_and_standby
    primary.psql(
        "CREATE TABLE IF NOT EXISTS heartbeat (at timestamptz); INSERT INTO heartbeat VALUES (now())", "herald"
    )
    deadline = time.monotonic() + 10
    while standby.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'heartbeat'", "herald") != "1":
        assert time.monotonic() < deadline, "the standby never replayed the primary's write"
        time.sleep(0.1)
    report = health_with(DATABASE_URL=primary.url, DATABASE_REPLICA_URL=standby.url)
    replica = report["components"]["database_replica"]
    assert replica["status"] == "ok"
    assert replica["detail"]["in_recovery"] is True
    assert 0 <= replica["detail"]["replication_lag_s"] < 10
    assert report["components"]["database"]["detail"] == {"role": "primary", "writable": True}


def test_an_idle_caught_up_standby_has_no_lag(primary_and_standby):
    primary, standby = primary_and_standby
    time.sleep(1.2)
    report = health_with(DATABASE_URL=primary.url, DATABASE_REPLICA_URL=standby.url, REPLICA_MAX_LAG_SECONDS="0.5")
    assert report["components"]["database_replica"]["status"] == "ok"
    assert report["components"]["database_replica"]["detail"]["replication_lag_s"] == 0


def test_a_standby_behind_on_replay_is_degraded(primary_and_standby):
    primary, standby = primary_and_standby
    standby.psql("SELECT pg_wal_replay_pause()", "herald")
    try:
        primary.psql("INSERT INTO heartbeat VALUES (now())", "herald")
        time.sleep(1.2)
        report = health_with(DATABASE_URL=primary.url, DATABASE_REPLICA_URL=standby.url, REPLICA_MAX_LAG_SECONDS="0.5")
        assert report["components"]["database_replica"]["status"] == "degraded"
        assert report["components"]["database_replica"]["detail"]["replication_lag_s"] >= 1
        assert report["status"] == "degraded"
    finally:
        standby.psql("SELECT pg_wal_replay_resume()", "herald")


def test_a_standby_in_place_of_the_primary_is_flagged_not_writable(primary_and_standby):
    _, standby = primary_and_standby
    report = health_with(DATABASE_URL=standby.url)
    assert report["components"]["database"]["status"] == "degraded"
    assert report["components"]["database"]["detail"] == {"role": "standby", "writable": False}


def test_a_dead_standby_degrades_but_does_not_take_herald_down(primary_and_standby):
    primary, _ = primary_and_standby
    report = health_with(DATABASE_URL=primary.url, DATABASE_REPLICA_URL="postgres://herald@127.0.0.1:1/herald")
    assert report["components"]["database_replica"]["status"] == "down"
    assert report["status"] == "degraded"
