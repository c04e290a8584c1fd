"""The Postgres primary dies (SIGKILL) during click load through HAProxy: every click still redirects,
and every click is stored once the new primary takes writes (the stream holds them meanwhile)."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.drills.cluster import REPO, DrillResult

pytestmark = pytest.mark.drill

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
}


def test_tracking_during_db_failover(healthy_cluster, report):
    cluster = healthy_cluster
    setup = subprocess.run(
        [sys.executable, "-m", "tests.drills.tracking_setup", "--deliveries", "300"],
        cwd=REPO,
        env={**os.environ, **cluster.stack.app_environment()},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seeded = json.loads(setup.stdout.strip().splitlines()[-1])
    campaign_id, paths = seeded["campaign_id"], seeded["paths"]
    # Both web nodes learn the link table while the database is up.
    for _ in range(6):
        assert (
            requests.get(f"{cluster.url}{paths[0]}", headers=BROWSER, allow_redirects=False, timeout=10).status_code
            == 302
        )
    results, stop = [], threading.Event()

    def load():
        session = requests.Session()
        index = 1
        while not stop.is_set():
            path = paths[index % len(paths)]
            index += 1
            try:
                response = session.get(f"{cluster.url}{path}", headers=BROWSER, allow_redirects=False, timeout=10)
                results.append(
                    response.status_code == 302 and response.headers.get("Location") == "https://example.com/drill"
                )
            except requests.RequestException:
                results.append(False)
            time.sleep(0.01)

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(3)
    primary = cluster.stack.primary_name()
    cluster.kill(primary, "KILL")
    cluster.wait_for(lambda: cluster.stack.primary_name() not in (None, primary), 60, "a new primary", interval=1)
    time.sleep(5)
    stop.set()
    thread.join(timeout=30)
    clicks, redirected = len(results), sum(results)

    def recorded() -> int:
        try:
            with cluster.database() as connection:
                return (
                    connection.execute(
                        "SELECT count(*) FROM analytics_event WHERE campaign_id = %s AND type = 'clicked'",
                        (campaign_id,),
                    ).fetchone()[0]
                    - 6
                )
        except Exception:  # noqa: BLE001 - the database may still be settling
            return -1

    # Beat drains the stream every few seconds on the cluster's workers.
    started = time.monotonic()
    while recorded() < redirected and time.monotonic() - started < 90:
        time.sleep(1)
    events = recorded()
    print(f"\nDRILL tracking_during_db_failover: clicks={clicks} redirected={redirected} events_recorded={events}")
    report(
        DrillResult(
            "tracking_during_db_failover",
            clicks,
            clicks - redirected,
            time.monotonic() - started,
            max(0, redirected - events),
            "every click redirects; every click stored once the database is back",
            redirected == clicks and events == redirected,
        )
    )
    assert clicks > 100
    assert redirected == clicks, f"{clicks - redirected} clicks did not redirect"
    assert events == redirected, f"{redirected} clicks redirected, {events} stored"
