"""pytest plugin: a throwaway Postgres and Redis for the test session, on free ports.

Loaded with `-p tests.harness` (see pyproject.toml) so it runs before pytest-django reads the
settings. DATABASE_URL and REDIS_URL, when set, are honoured instead: the suite then runs
against those servers and starts nothing.
"""

import os
import shutil

import pytest

from common.local_services import LocalPostgres, LocalRedis, service_tempdir

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
    except Exception:
        stop_all()
        raise
