"""End to end on a real node: Postgres is stopped under it, a mail client's one-click unsubscribe
(plain curl) still succeeds, and once Postgres is back the Celery beat schedule applies it.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from common.local_herald import REPO, LocalHerald
from common.local_services import service_tempdir, stop_process
from subscribers.unsubscribe_queue import QUEUE_KEY

pytestmark = pytest.mark.slow

CREATE = """
from accounts.models import Workspace
from subscribers.services import list_create, subscriber_create
from subscribers.tokens import make_unsubscribe_token
workspace = Workspace.objects.get(slug="demo")
news = list_create(workspace_id=workspace.id, name="Failover news", actor=None)
person = subscriber_create(workspace_id=workspace.id, email="failover@example.net", list_ids=[news.id])
print("TOKEN", make_unsubscribe_token(workspace_id=workspace.id, subscriber_id=person.id, campaign_id=9))
"""
STATUS = """
from subscribers.models import Subscriber
person = Subscriber.objects.get(email="failover@example.net")
print("STATUS", person.status, *person.memberships.values_list("status", flat=True))
"""


def last_marked(output: str, marker: str) -> str:
    return [line for line in output.splitlines() if line.startswith(marker)][-1].split(" ", 1)[1]


@pytest.fixture
def herald():
    directory = service_tempdir("herald-unsubscribe-")
    node = LocalHerald(directory, extra_env={"WEB_CONCURRENCY": "1", "UNSUBSCRIBE_SPOOL_DIR": str(directory / "spool")})
    node.up()
    yield node
    node.down()


@contextlib.contextmanager
def worker_with_beat(herald):
    log = open(herald.directory / "worker.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "config",
            "worker",
            "--beat",
            "--schedule",
            str(herald.directory / "beat-schedule"),
            "--queues",
            "default",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=REPO,
        env=herald.environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        yield process
    finally:
        stop_process(process, timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def test_a_one_click_unsubscribe_during_a_database_outage_is_applied_after_it(herald):
    token = last_marked(herald.manage("shell", "-c", CREATE), "TOKEN")
    url = f"{herald.url}/u/{token}/"
    queue = redis.Redis.from_url(herald.redis.url)
    herald.postgres.stop()
    try:
        result = subprocess.run(
            ["curl", "-sS", "-w", "\n%{http_code}", "-X", "POST", "-d", "List-Unsubscribe=One-Click", url],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.stdout.splitlines()[-1] == "200", result.stdout + result.stderr
        assert queue.llen(QUEUE_KEY) == 1
    finally:
        herald.postgres.start()
    assert last_marked(herald.manage("shell", "-c", STATUS), "STATUS") == "active confirmed"

    with worker_with_beat(herald):
        deadline = time.monotonic() + 90
        status = ""
        while time.monotonic() < deadline:
            status = last_marked(herald.manage("shell", "-c", STATUS), "STATUS")
            if status.startswith("unsubscribed"):
                break
            time.sleep(2)
    log = (herald.directory / "worker.log").read_text(errors="replace")
    assert status == "unsubscribed unsubscribed", log[-3000:]
    assert queue.llen(QUEUE_KEY) == 0
    assert "subscribers.apply_queued_unsubscribes" in log
