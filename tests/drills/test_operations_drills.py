"""Operations on the real cluster: the synthetic probe sends through the cluster's workers, notices
both web nodes gone within two minutes, recovers when they return, and the SLO page shows the
dip; the queue-depth alert reaches a webhook within two minutes of both workers stopping."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.drills.cluster import REPO, DrillResult
from tests.operations.test_alerting import Receiver

pytestmark = pytest.mark.drill

STAFF_EMAIL, STAFF_PASSWORD = "ops-drill@herald.test", "ops-drill-password-1"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def run_django(cluster, code: str, extra_env: dict | None = None, timeout: float = 90) -> str:
    """Python with Django set up against the cluster, as its own processes are configured."""
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        cwd=REPO,
        env={**os.environ, **cluster.stack.app_environment(), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def checks_since(cluster, moment) -> list[tuple]:
    with cluster.database() as connection:
        return connection.execute(
            "SELECT started_at, ok, failed_step, error FROM operations_syntheticcheck"
            " WHERE started_at > %s ORDER BY started_at",
            (moment,),
        ).fetchall()


def database_now(cluster):
    with cluster.database() as connection:
        return connection.execute("SELECT now()").fetchone()[0]


def slo_page(cluster) -> str:
    run_django(
        cluster,
        "from accounts.models import User\n"
        f"user = User.objects.filter(email={STAFF_EMAIL!r}).first() or User.objects.create_user("
        f"email={STAFF_EMAIL!r}, password={STAFF_PASSWORD!r})\n"
        f"user.is_staff = True; user.set_password({STAFF_PASSWORD!r}); user.save()",
    )
    with requests.Session() as http:
        login = http.get(cluster.url + "/accounts/login/", timeout=10)
        token = CSRF_FIELD.search(login.text).group(1)
        http.post(
            cluster.url + "/accounts/login/",
            data={"csrfmiddlewaretoken": token, "username": STAFF_EMAIL, "password": STAFF_PASSWORD},
            headers={"Referer": cluster.url + "/accounts/login/"},
            timeout=10,
        )
        page = http.get(cluster.url + "/operations/slos/", timeout=10)
    assert page.status_code == 200, page.status_code
    return page.text


def test_the_synthetic_check_sends_fails_without_web_nodes_and_the_slo_page_shows_the_dip(healthy_cluster, report):
    cluster = healthy_cluster
    # The sending step through the cluster's own send workers and SMTP sink.
    sending = {
        "SYNTHETIC_SINK_DIR": str(cluster.stack.var / "smtp"),
        "SYNTHETIC_SMTP_HOST": "127.0.0.1",
        "SYNTHETIC_SMTP_PORT": str(cluster.stack.port("smtp")),
    }
    output = run_django(
        cluster,
        "import json; from operations.synthetic import synthetic_check_run\n"
        "check = synthetic_check_run()\n"
        "print(json.dumps({'ok': check.ok, 'steps': check.steps}))",
        extra_env=sending,
    )
    sent = json.loads(output.strip().splitlines()[-1])
    assert sent["ok"], sent
    assert [step["name"] for step in sent["steps"]] == ["sign_in", "dashboard", "send_campaign", "delivered"]
    print("synthetic check on the cluster: " + ", ".join(f"{s['name']} {s['ms']} ms" for s in sent["steps"]))

    cluster.kill("web1", "TERM")
    cluster.kill("web2", "TERM")  # both drained and down from here
    stopped_at = database_now(cluster)
    failing_after = cluster.wait_for(
        lambda: any(not ok for _, ok, _, _ in checks_since(cluster, stopped_at)), 150, "a failed synthetic check", 1
    )
    failed = next(row for row in checks_since(cluster, stopped_at) if not row[1])
    assert failed[2] == "sign_in", failed

    cluster.start("web1")
    cluster.start("web2")
    cluster.wait_for(cluster.web_nodes_up, 30, "both web nodes back in HAProxy", 0.5)
    back_at = database_now(cluster)
    recovered_after = cluster.wait_for(
        lambda: any(ok for _, ok, _, _ in checks_since(cluster, back_at)), 150, "a passing synthetic check", 1
    )
    page = slo_page(cluster)
    states = re.findall(r'data-testid="synthetic-minute-(ok|failed|unknown)"', page)
    assert "failed" in states, states[-10:]
    last_failed = len(states) - 1 - states[::-1].index("failed")
    assert "ok" in states[last_failed + 1 :], states[-10:]  # the dip, then the recovery
    result = report(
        DrillResult(
            "synthetic_web_down",
            len(checks_since(cluster, stopped_at)),
            sum(1 for row in checks_since(cluster, stopped_at) if not row[1]),
            recovered_after,
            0,
            "probe fails within 120 s of both web nodes stopping, passes again after they start",
            failing_after <= 120,
        )
    )
    print(f"{result.line}; failed check {failing_after:.0f} s after the stop ({failed[3]}); squares {states[-6:]}")
    assert failing_after <= 120, result.line


def test_stopping_both_workers_fires_the_queue_depth_alert_through_a_webhook(healthy_cluster, report):
    cluster = healthy_cluster
    receiver = Receiver()
    run_django(
        cluster,
        "from operations.models import AlertChannel\n"
        f"AlertChannel.objects.update_or_create(name='drill hook', defaults={{'kind': 'webhook', "
        f"'target': {receiver.url!r}, 'enabled': True}})",
    )
    monitor_env = {**os.environ, **cluster.stack.app_environment()}
    monitor_env.update({"ALERT_FOR_SECONDS": "5", "ALERT_QUEUE_DEPTH_WARNING": "5", "ALERT_WORKER_PING_SECONDS": "1"})
    monitor = subprocess.Popen(
        [sys.executable, "manage.py", "monitor", "--interval", "2"],
        cwd=REPO,
        env=monitor_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    enqueue = (
        "from config.celery_app import app\n"
        "for _ in range(20): app.send_task('operations.notify_status_subscribers', args=[0], queue='default')"
    )

    def events(kind):
        return [hook for hook in receiver.received if hook["event"] == kind and hook["alert"]["rule"] == "queue_depth"]

    try:
        began = time.monotonic()
        cluster.kill("worker1", "TERM")
        cluster.kill("worker2", "TERM")
        stopped = time.monotonic() - began
        run_django(cluster, enqueue)
        fired_after = cluster.wait_for(lambda: events("firing"), 120, "the queue-depth alert at the webhook", 0.5)
        cluster.start("worker1")
        cluster.start("worker2")
        resolved_after = cluster.wait_for(lambda: events("resolved"), 120, "the queue-depth alert resolved", 0.5)
    finally:
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(timeout=30)
        receiver.close()
        run_django(
            cluster,
            "from operations.models import AlertChannel\nAlertChannel.objects.filter(name='drill hook').delete()",
        )
    result = report(
        DrillResult(
            "alert_workers_down",
            len(receiver.received),
            0,
            resolved_after,
            0,
            "queue-depth alert at the webhook within 120 s of both workers stopping; resolved after they start",
            fired_after <= 120,
        )
    )
    print(f"{result.line}; fired {fired_after:.1f} s after the tasks were queued ({stopped:.1f} s to stop the workers)")
    assert fired_after <= 120
