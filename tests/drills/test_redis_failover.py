"""The Redis master dies (SIGKILL) while signed-in users load their dashboard."""

import time

import pytest

from tests.drills.cluster import DrillResult

pytestmark = pytest.mark.drill

PROMOTION_WITHIN_S = 10


def test_redis_master_sigkill_keeps_users_signed_in(healthy_cluster, report):
    cluster = healthy_cluster
    master = cluster.stack.redis_master()
    assert master in ("redis1", "redis2")
    load = cluster.start_load("get", readers=3)
    time.sleep(3)
    killed_at = time.monotonic()
    cluster.kill(master, "KILL")
    cluster.wait_for(
        lambda: cluster.stack.redis_master() not in (None, master), PROMOTION_WITHIN_S + 20, "a Sentinel promotion"
    )
    recovery = time.monotonic() - killed_at
    time.sleep(4)
    records = load.stop()
    # Every dashboard load is a 200 with the user still signed in: no 500 from a cache error,
    # no redirect to the login page from a lost session.
    failed = [record for record in records if not record["ok"]]
    result = report(
        DrillResult(
            "redis_master_sigkill",
            len(records),
            len(failed),
            recovery,
            0,
            f"promotion within {PROMOTION_WITHIN_S}s, users stay signed in, no 500",
            recovery <= PROMOTION_WITHIN_S and not failed,
        )
    )
    assert len(records) > 50
    assert recovery <= PROMOTION_WITHIN_S, result.line
    assert not failed, f"{result.line}; failures: {failed[:5]}"
