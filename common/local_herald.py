"""A single-node Herald on this machine: its own Postgres and Redis, migrated, seeded, served by gunicorn.

Used by `make run` (platform/devserver.py) and by the tests that need a real server process
they can break. It drives Herald only through manage.py and gunicorn, never by importing it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common.local_services import LocalPostgres, LocalRedis, ServiceError, free_port, port_is_open, stop_process

REPO = Path(__file__).resolve().parent.parent


class LocalHerald:
    def __init__(
        self,
        directory: Path,
        *,
        web_port: int | None = None,
        postgres_port: int | None = None,
        redis_port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.web_port = web_port or free_port()
        self.postgres = LocalPostgres(self.directory / "postgres", postgres_port)
        self.redis = LocalRedis(self.directory / "redis", redis_port)
        self.web: subprocess.Popen | None = None
        self.extra_env = extra_env or {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _stored_secret(self, name: str) -> str:
        """A random secret generated on first use and kept in the data directory."""
        path = self.directory / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(40))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def health_token(self) -> str:
        return self.extra_env.get("HEALTH_TOKEN") or self._stored_secret("health_token")

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "SECRET_KEY": self._stored_secret("secret_key"),
            "HEALTH_TOKEN": self.health_token,
            "DEBUG": "false",
            "HTTPS": "false",
            "STATIC_ROOT": str(self.directory / "staticfiles"),
            "MEDIA_ROOT": str(self.directory / "media"),
            "PORT": str(self.web_port),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def check_ports_free(self) -> None:
        for name, port in (("web", self.web_port), ("postgres", self.postgres.port), ("redis", self.redis.port)):
            if port_is_open(port):
                raise ServiceError(f"Port {port} (for {name}) is already in use; choose another or stop what holds it.")

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.environment(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise ServiceError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def start_services(self) -> None:
        self.postgres.start()
        self.redis.start()

    def prepare(self) -> None:
        """Migrate, collect static files and seed the demo workspace."""
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput", "--verbosity", "0")
        self.manage("seed_demo")

    def start_web(self, log_path: Path | None = None, env: dict[str, str] | None = None) -> None:
        # Samples of processes from an earlier run would be added to this run's.
        shutil.rmtree(self.directory / "metrics", ignore_errors=True)
        (self.directory / "metrics").mkdir()
        log = open(log_path or self.directory / "web.log", "ab")  # noqa: SIM115 - handed to the child
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.conf.py", "config.wsgi"],
            cwd=REPO,
            env={**self.environment(), "PROMETHEUS_MULTIPROC_DIR": str(self.directory / "metrics"), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise ServiceError(f"gunicorn exited at start-up; see {log.name}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise ServiceError(f"gunicorn did not answer /healthz within 30s; see {log.name}")

    def stop_web(self) -> None:
        stop_process(self.web, timeout=30)
        self.web = None

    def up(self) -> None:
        self.check_ports_free()
        try:
            self.start_services()
            self.prepare()
            self.start_web()
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        self.stop_web()
        self.redis.stop()
        self.postgres.stop()
