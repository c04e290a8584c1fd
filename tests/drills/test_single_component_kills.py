"""Killing any one component leaves the dashboard reachable (the drills cover the rest at length).

Except HAProxy: it is the local cluster's single entry point, for browsers and for the web
nodes' way to the Postgres primary alike. Killed, the web nodes still answer on their own
ports, with the clear "temporarily unavailable" page where they need the database (in
production a pair of load balancers shares a floating address; platform/README.md).
"""

import pytest
import requests

from tests.drills.cluster import DEMO_EMAIL, DEMO_PASSWORD
from tests.drills.load import Recorder, sign_in

pytestmark = pytest.mark.drill


def dashboard_works(base_url: str) -> None:
    session = sign_in(Recorder(10), base_url, DEMO_EMAIL, DEMO_PASSWORD)  # a sign-in writes a session row
    assert session is not None, f"cannot sign in at {base_url}"
    page = session.get(f"{base_url}/", timeout=15, allow_redirects=False)
    assert page.status_code == 200 and "Sign out" in page.text


def standby_of(cluster) -> str:
    return {"pg1": "pg2", "pg2": "pg1"}[cluster.stack.primary_name()]


def redis_replica_of(cluster) -> str:
    return {"redis1": "redis2", "redis2": "redis1"}[cluster.stack.redis_master()]


@pytest.mark.parametrize(
    "component",
    ["etcd", "sentinel1", "postgres standby", "redis replica", "smtp", "beat", "worker2"],
)
def test_killing_one_component_leaves_the_dashboard_working(healthy_cluster, component):
    cluster = healthy_cluster
    name = {"postgres standby": standby_of, "redis replica": redis_replica_of}.get(component, lambda c: component)(
        cluster
    )
    cluster.kill(name, "KILL")
    dashboard_works(cluster.url)
    status = cluster.status()
    assert status[name]["state"] != "RUNNING"
    cluster.start(name)
    assert cluster.status()[name]["healthy"]
    dashboard_works(cluster.url)


def test_with_haproxy_gone_the_web_nodes_answer_directly_with_a_clear_message(healthy_cluster):
    cluster = healthy_cluster
    cluster.kill("haproxy", "KILL")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{cluster.url}/healthz", timeout=5)
    direct = f"http://127.0.0.1:{cluster.stack.port('web1')}"
    assert requests.get(f"{direct}/healthz", timeout=5).status_code == 200
    recorder = Recorder(10)
    sign_in(recorder, direct, DEMO_EMAIL, DEMO_PASSWORD)
    assert recorder.records[-1]["status"] == 503, recorder.records  # "temporarily unavailable", not a 500
    cluster.start("haproxy")
    cluster.wait_for(cluster.web_nodes_up, 20, "HAProxy seeing both web nodes")
    dashboard_works(cluster.url)


def test_kill_names_the_components_when_given_an_unknown_one(cluster):
    result = cluster.run("kill", "nosuch", check=False)
    assert result.returncode == 2
    assert "no component 'nosuch'" in result.stderr
    for name in ("etcd", "pg1", "pg2", "redis1", "sentinel3", "haproxy", "web2", "worker1", "beat", "smtp"):
        assert name in result.stderr


def test_starting_twice_does_not_start_a_second_copy(cluster):
    before = cluster.stack.supervisord_pid()
    result = cluster.run("up", "--detach", check=False)
    assert result.returncode == 1
    assert f"already running (supervisord pid {before}" in result.stderr
    assert cluster.stack.supervisord_pid() == before
    assert all(row["healthy"] for row in cluster.status().values())
