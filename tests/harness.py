"""pytest plugin: a throwaway Postgres, Redis and SMTP sink for the test session, on free ports.

Loaded with `-p tests.harness` (see pyproject.toml) so it runs before pytest-django reads the
settings. The sink receives the mail the platform sends, from tests and workers alike. DATABASE_URL,
REDIS_URL and SMTP_SINK_DIR, when set, are honoured instead: the suite then uses those and
starts nothing.
"""

import os
import shutil

import pytest

from common.local_services import LocalPostgres, LocalRedis, service_tempdir
from common.smtp_sink import SmtpSink

TEST_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "SECRET_KEY": "test-secret-key-used-only-by-the-test-suite",
    "DEBUG": "false",
    "HTTPS": "false",
    "HEALTH_TOKEN": "test-health-token",
    "LOG_LEVEL": "WARNING",
}


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    for name, value in TEST_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if not early_config.known_args_namespace.help:
        _start_session_services(early_config)
    return (yield)


def _start_session_services(config) -> None:
    directory = service_tempdir("herald-test-")
    started = []
    (directory / "static").mkdir()
    os.environ.setdefault("STATIC_ROOT", str(directory / "static"))
    os.environ.setdefault("MEDIA_ROOT", str(directory / "media"))

    def stop_all():
        for service in reversed(started):
            service.stop()
        shutil.rmtree(directory, ignore_errors=True)

    config.add_cleanup(stop_all)
    try:
        if not os.environ.get("DATABASE_URL"):
            postgres = LocalPostgres(directory / "postgres").start(fast_and_unsafe=True)
            started.append(postgres)
            os.environ["DATABASE_URL"] = postgres.url
        if not os.environ.get("REDIS_URL"):
            redis = LocalRedis(directory / "redis").start()
            started.append(redis)
            os.environ["REDIS_URL"] = redis.url
        if not os.environ.get("SMTP_SINK_DIR"):
            # Mail the platform sends (in this process or in worker subprocesses) lands here.
            sink = SmtpSink(directory / "smtp").start()
            started.append(sink)
            os.environ.update(SMTP_SINK_DIR=str(sink.store.directory), EMAIL_HOST=sink.host, EMAIL_PORT=str(sink.port))
    except Exception:
        stop_all()
        raise
