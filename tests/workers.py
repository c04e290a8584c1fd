"""Real Celery workers and web nodes for tests whose behaviour depends on real processes.

    @pytest.mark.django_db(transaction=True)
    def test_import_survives_its_worker(...):
        with running_worker(queues=("imports",)) as worker:
            ...
            worker.kill(signal.SIGKILL)

The worker runs `celery --app config worker` in a subprocess against the harness's Redis and
the test database (the one pytest-django created, so tests must use transactional_db for the
worker to see their rows). Its log is kept and shown if it fails to start. `running_web` does
the same for a gunicorn node, for tests that talk HTTP to Herald from outside.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from common.local_services import free_port, stop_process

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


class WebNode:
    def __init__(self, process: subprocess.Popen, url: str, log: Path):
        self.process = process
        self.url = url
        self.log = log


_static_collected = False


def _collect_static_once(environment: dict) -> None:
    # Outside the test process pages are rendered with the manifest storage, which needs this.
    global _static_collected
    if not _static_collected:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=REPO_ROOT,
            env=environment,
            check=True,
        )
        _static_collected = True


@contextlib.contextmanager
def running_web(extra_env: dict | None = None, timeout: float = 30):
    """A gunicorn node on a free port serving the test database; yields it with its `.url`."""
    port = free_port()
    environment = dict(
        os.environ,
        DATABASE_URL=database_url_for_tests(),
        PORT=str(port),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
        PYTHONUNBUFFERED="1",
    )
    # extra_env may override the defaults above (a test can point the node at a dead database).
    environment.update(extra_env or {})
    _collect_static_once(environment)
    log = Path(tempfile.mkdtemp(prefix="herald-web-")) / "web.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.conf.py", "config.wsgi"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    node = WebNode(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{node.url}/healthz", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{log.read_text(errors='replace')[-3000:]}") from None
                time.sleep(0.1)
        yield node
    finally:
        stop_process(process, timeout=15)
