"""The Postgres primary dies (Patroni and postmaster both, SIGKILL) while users are signing in."""

import time

import pytest
import requests

from tests.drills.cluster import DEMO_EMAIL, DEMO_PASSWORD, DrillResult
from tests.drills.load import Recorder, sign_in

pytestmark = pytest.mark.drill

NEW_PRIMARY_WITHIN_S = 30


def test_primary_sigkill_loses_no_acknowledged_write(healthy_cluster, report):
    cluster = healthy_cluster
    others = cluster.pids("web1", "web2", "worker1", "worker2")
    primary = cluster.stack.primary_name()
    load = cluster.start_load("mixed", readers=1, writers=2)
    time.sleep(3)
    killed_at = time.time()
    cluster.kill(primary, "KILL")
    # Keep signing in until a sign-in after the kill is acknowledged: the new primary takes writes.
    deadline = time.monotonic() + 60
    recovered_at = None
    while recovered_at is None and time.monotonic() < deadline:
        time.sleep(1)
        recorder = Recorder(100)
        if sign_in(recorder, cluster.url, DEMO_EMAIL, DEMO_PASSWORD):
            recovered_at = time.time()
    time.sleep(3)
    records = load.stop()
    writes_after_kill = [r for r in records if r.get("session_key") and r["t"] > killed_at]
    if writes_after_kill:
        recovered_at = min(recovered_at or float("inf"), min(r["t"] for r in writes_after_kill))
    recovery = (recovered_at - killed_at) if recovered_at else float("inf")
    acknowledged = [r["session_key"] for r in records if r.get("session_key")]
    lost = cluster.missing_sessions(acknowledged)
    failed = [r for r in records if not r["ok"]]
    server_errors = [r for r in failed if r["status"] == 500]
    new_primary = cluster.stack.primary_name()
    result = report(
        DrillResult(
            "postgres_primary_sigkill",
            len(records),
            len(failed),
            recovery,
            lost,
            f"new primary takes writes within {NEW_PRIMARY_WITHIN_S}s, 0 lost writes",
            recovery <= NEW_PRIMARY_WITHIN_S and lost == 0,
        )
    )
    assert new_primary not in (None, primary), f"no new primary after {primary} died: {cluster.status()}"
    assert recovery <= NEW_PRIMARY_WITHIN_S, result.line
    assert acknowledged and [r for r in acknowledged if r], "no sign-in was acknowledged"
    assert lost == 0, f"{lost} acknowledged writes are missing after the failover"
    # While there is no primary, pages say so (503), never a server error.
    assert not server_errors, f"500s during the failover: {server_errors[:5]}"

    # The web nodes and workers recovered by themselves: same processes, and they work.
    assert cluster.pids("web1", "web2", "worker1", "worker2") == others
    for node in ("web1", "web2"):
        direct = f"http://127.0.0.1:{cluster.stack.port(node)}"
        session = sign_in(Recorder(10), direct, DEMO_EMAIL, DEMO_PASSWORD)
        assert session is not None, f"{node} cannot sign in after the failover"
        assert session.get(f"{direct}/", timeout=10).status_code == 200
    token = cluster.send_probe(0.2)
    cluster.wait_for(lambda: (cluster.probe(token) or {}).get("completed"), 60, "a task completing after failover")
    assert requests.get(f"{cluster.url}/healthz", timeout=5).status_code == 200
