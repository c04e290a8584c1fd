"""A Celery worker dies (SIGKILL, pool and all) in the middle of a task."""

import time

import pytest

from tests.drills.cluster import DrillResult

pytestmark = pytest.mark.drill

PROBE_SECONDS = 8


def test_worker1_sigkill_mid_task_hands_the_task_to_worker2(healthy_cluster, report):
    cluster = healthy_cluster
    # Each worker runs one task at a time and reserves no other; probes are sent until one runs
    # on worker1 (the ones worker2 takes just complete there).
    tokens, victim = [], None
    for _ in range(4):
        token = cluster.send_probe(PROBE_SECONDS)
        tokens.append(token)
        cluster.wait_for(lambda token=token: (cluster.probe(token) or {}).get("starts"), 30, "the probe starting")
        if cluster.probe(token)["last_started_by"] == "worker1@herald":
            victim = token
            break
    assert victim, f"no probe ran on worker1: {[cluster.probe(t) for t in tokens]}"
    time.sleep(1)
    killed_at = time.monotonic()
    cluster.kill("worker1", "KILL")
    assert not cluster.probe(victim)["completed"]
    # The broker hands the unacknowledged task back once its visibility timeout has passed.
    cluster.wait_for(lambda: cluster.probe(victim)["completed"], 150, "worker2 completing the killed task", 0.5)
    recovery = time.monotonic() - killed_at
    probes = {token: cluster.probe(token) for token in tokens}
    stuck = [token for token, probe in probes.items() if not probe["completed"]]
    result = report(
        DrillResult(
            "worker1_sigkill",
            len(tokens),
            len(stuck),
            recovery,
            len(stuck),
            "the task is run again by worker2, nothing stuck",
            not stuck and probes[victim]["completed_by"] == "worker2@herald",
        )
    )
    assert probes[victim]["completed_by"] == "worker2@herald", probes[victim]
    assert probes[victim]["starts"] == 2, probes[victim]
    assert not stuck, f"{result.line}; stuck: {stuck}"
