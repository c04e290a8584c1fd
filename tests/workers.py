"""Real Celery workers for tests whose behaviour depends on one: at-least-once delivery, resumption.

    @pytest.mark.django_db(transaction=True)
    def test_import_survives_its_worker(...):
        with running_worker(queues=("imports",)) as worker:
            ...
            worker.kill(signal.SIGKILL)

The worker runs `celery --app config worker` in a subprocess against the harness's Redis and
the test database (the one pytest-django created, so tests must use transactional_db for the
worker to see their rows). Its log is kept and shown if it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from common.local_services import stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent


def database_url_for_tests() -> str:
    """DATABASE_URL for the database the running tests use (pytest-django's `test_...` copy)."""
    settings = connection.settings_dict
    credentials = quote(settings["USER"] or "", safe="")
    if settings.get("PASSWORD"):
        credentials += ":" + quote(settings["PASSWORD"], safe="")
    return f"postgres://{credentials}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL, whole_group: bool = True) -> None:
        """Signal the worker; with whole_group its pool processes get the signal too, as on a lost machine."""
        if self.process.poll() is not None:
            return
        if whole_group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        if sig == signal.SIGKILL:
            self.process.wait(timeout=10)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"The Celery worker did not start:\n{self.output()[-3000:]}")


@contextlib.contextmanager
def running_worker(queues=("default",), concurrency: int = 1, extra_env: dict | None = None, timeout: float = 60):
    environment = dict(os.environ, DATABASE_URL=database_url_for_tests(), PYTHONUNBUFFERED="1", **(extra_env or {}))
    log = Path(tempfile.mkdtemp(prefix="herald-worker-")) / "worker.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "config",
        "worker",
        "--queues",
        ",".join(queues),
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"test-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(process, log)
    try:
        worker.wait_ready(timeout)
        yield worker
    finally:
        stop_process(process, timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
