"""Web node drills: a node killed outright, and a rolling restart, under load through HAProxy."""

import time

import pytest

from tests.drills.cluster import DrillResult

pytestmark = pytest.mark.drill


def failures(records: list[dict]) -> list[dict]:
    return [record for record in records if not record["ok"]]


def test_web1_sigkill_during_get_load_fails_no_request(healthy_cluster, report):
    cluster = healthy_cluster
    load = cluster.start_load("get", readers=3)
    time.sleep(3)
    killed_at = time.monotonic()
    cluster.kill("web1", "KILL")
    # HAProxy's check (every second) takes the dead node out; retries cover the requests before that.
    cluster.wait_for(
        lambda: cluster.stack.haproxy_servers().get(("web_nodes", "web1")) == "DOWN", 10, "HAProxy marking web1 down"
    )
    recovery = time.monotonic() - killed_at
    time.sleep(3)
    records = load.stop()
    failed = failures(records)
    result = report(
        DrillResult("web1_sigkill", len(records), len(failed), recovery, 0, "0 failed GET requests", not failed)
    )
    assert len(records) > 50, "the load hardly ran"
    assert not failed, f"{result.line}; failures: {failed[:5]}"


def test_rolling_restart_during_mixed_load_fails_no_request(healthy_cluster, report):
    cluster = healthy_cluster
    load = cluster.start_load("mixed", readers=2, writers=2)
    time.sleep(3)
    started = time.monotonic()
    for node in ("web1", "web2"):
        cluster.kill(node, "TERM")  # returns once the node has finished its requests and exited
        cluster.start(node)
        cluster.wait_for(
            lambda node=node: cluster.stack.haproxy_servers().get(("web_nodes", node)) == "UP",
            20,
            f"{node} back in HAProxy",
        )
    recovery = time.monotonic() - started
    time.sleep(2)
    records = load.stop()
    failed = failures(records)
    acknowledged = [record["session_key"] for record in records if record.get("session_key")]
    lost = cluster.missing_sessions(acknowledged)
    result = report(
        DrillResult(
            "rolling_restart",
            len(records),
            len(failed),
            recovery,
            lost,
            "0 failed requests of any method",
            not failed and not lost,
        )
    )
    assert {record["method"] for record in records} == {"GET", "POST"}
    assert acknowledged, "no sign-in (POST) was acknowledged during the drill"
    assert not failed, f"{result.line}; failures: {failed[:5]}"
    assert lost == 0
