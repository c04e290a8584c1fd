"""A real web process while Redis, then Postgres, are stopped underneath it.

Only the database's loss takes Herald down; with Redis gone the dashboard still renders
(sessions fall back to Postgres, cache errors are ignored) and /health says `degraded`.
"""

import os
import re
import signal
import time

import pytest
import requests

from common.local_herald import LocalHerald
from common.local_services import service_tempdir
from tests.web import sign_in

pytestmark = pytest.mark.slow

DEMO = ("demo@herald.test", "herald-demo-password")
TOKEN = {"Authorization": "Bearer degraded-test-token"}


@pytest.fixture(scope="module")
def herald():
    directory = service_tempdir("herald-degraded-")
    herald = LocalHerald(
        directory,
        extra_env={"HEALTH_TOKEN": "degraded-test-token", "WEB_CONCURRENCY": "1", "STATUS_PAGE_CACHE_SECONDS": "0"},
    )
    herald.up()
    yield herald
    herald.down()


def get(herald, path, session=None, **kwargs):
    return (session or requests).get(f"{herald.url}{path}", timeout=10, allow_redirects=False, **kwargs)


def test_everything_up(herald):
    body = get(herald, "/health", headers=TOKEN).json()
    assert body["status"] == "ok"
    assert {name: c["status"] for name, c in body["components"].items()} == {
        "database": "ok",
        "redis": "ok",
        "broker": "ok",
        "backups": "ok",
    }


def test_with_redis_stopped_the_platform_is_degraded_but_serves(herald):
    session = sign_in(herald.url, *DEMO)
    assert get(herald, "/", session).status_code == 200
    herald.redis.stop()
    try:
        assert get(herald, "/healthz").status_code == 200
        assert get(herald, "/readyz").status_code == 200
        response = get(herald, "/health", headers=TOKEN)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["components"]["redis"]["status"] == "down"
        assert body["components"]["database"]["status"] == "ok"
        assert get(herald, "/health").json() == {"status": "degraded"}
        # The signed-in user stays signed in: the session is read from Postgres.
        dashboard = get(herald, "/", session)
        assert dashboard.status_code == 200
        assert "Demo Workspace" in dashboard.text
        # And a new sign-in works too.
        assert get(herald, "/", sign_in(herald.url, *DEMO)).status_code == 200
        # The ignored cache errors are counted, across gunicorn's processes.
        metrics = get(herald, "/metrics", headers=TOKEN).text
        errors = re.search(r"^herald_cache_errors_total (\S+)$", metrics, re.MULTILINE)
        assert errors and float(errors.group(1)) > 0
        assert re.search(r'^herald_http_requests_total\{.*view="dashboard".*\} [1-9]', metrics, re.MULTILINE)
    finally:
        herald.redis.start()
    assert get(herald, "/health").json() == {"status": "ok"}


def test_with_postgres_stopped_health_is_down_and_pages_say_unavailable(herald):
    session = sign_in(herald.url, *DEMO)
    herald.manage(
        "shell",
        "-c",
        "from operations.incidents import incident_open; "
        "incident_open(title='Database maintenance', impact='minor', components=['api'], message='Planned.', by='ops')",
    )
    assert "Database maintenance" in get(herald, "/status/").text  # seen once, so it is cached
    assert get(herald, "/", session).status_code == 200  # the dashboard's figures are cached too
    herald.postgres.stop()
    try:
        assert get(herald, "/healthz").status_code == 200
        readyz = get(herald, "/readyz")
        assert readyz.status_code == 200
        assert readyz.json()["status"] == "ready"
        health = get(herald, "/health", headers=TOKEN)
        assert health.status_code == 503
        assert health.json()["status"] == "down"
        assert health.json()["components"]["database"]["status"] == "down"
        assert get(herald, "/health").status_code == 503
        for path in ("/accounts/settings/", "/campaigns/"):
            page = get(herald, path, session)
            assert page.status_code == 503, path
            assert "temporarily unavailable" in page.text
            assert page.headers["Retry-After"]
        # The dashboard shows its last figures (ARCHITECTURE.md invariant 4; past
        # ANALYTICS_REPORT_CACHE_SECONDS they are marked with their age, see tests/analytics).
        dashboard = get(herald, "/", session)
        assert dashboard.status_code == 200
        assert "Demo Workspace" in dashboard.text
        # The login page itself answers too (it needs no database until the form is posted).
        assert get(herald, "/accounts/login/").status_code == 200
        # The public status page answers during the outage it reports, from cached incidents.
        status = get(herald, "/status/")
        assert status.status_code == 200
        assert 'data-testid="component-dashboard">Major outage<' in status.text
        assert "Database maintenance" in status.text
        assert "could not be refreshed just now" in status.text
    finally:
        herald.postgres.start()
    assert get(herald, "/", session).status_code == 200
    assert get(herald, "/health").json() == {"status": "ok"}


def test_a_terminating_node_reports_draining_before_it_stops(herald):
    port = herald.web_port
    herald.stop_web()
    herald.start_web(env={"DRAIN_SECONDS": "3"})
    assert herald.web_port == port
    assert get(herald, "/readyz").status_code == 200
    os.kill(herald.web.pid, signal.SIGTERM)
    statuses = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            response = get(herald, "/readyz")
        except requests.ConnectionError:
            break
        statuses.append(response.status_code)
        time.sleep(0.1)
    assert 503 in statuses, statuses
    # In-flight and draining-window requests were answered, never refused mid-way.
    assert set(statuses) <= {200, 503}
    herald.web.wait(timeout=30)
    herald.start_web()
