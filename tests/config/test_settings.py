"""Settings come from the environment and a bad value stops start-up with one line naming the variable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default'], 'caches': s.CACHES, 'broker': s.CELERY_BROKER_URL, "
    "'broker_options': s.CELERY_BROKER_TRANSPORT_OPTIONS, 'secret': s.SECRET_KEY, "
    "'debug': s.DEBUG, 'hsts': s.SECURE_HSTS_SECONDS, 'secure_cookie': s.SESSION_COOKIE_SECURE, "
    "'session': s.SESSION_ENGINE}, default=str))"
)


def start(env_overrides: dict, code: str = PRINT_SETTINGS, unset: tuple = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env_overrides}
    for name in unset:
        env.pop(name, None)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def assert_refused(result: subprocess.CompletedProcess, variable: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    assert lines[0].startswith("Configuration error:")
    assert variable in lines[0]


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off():
    assert_refused(start({"DEBUG": "false"}, unset=("SECRET_KEY", "SECRET_KEY_FILE")), "SECRET_KEY")


def test_debug_mode_runs_without_a_secret_key():
    result = start({"DEBUG": "true"}, unset=("SECRET_KEY",))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["debug"] is True


@pytest.mark.parametrize("value", ["maybe", "1", "yes", "on"])
def test_a_non_boolean_debug_is_refused(value):
    assert_refused(start({"DEBUG": value}), "DEBUG")


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://user@host/db", "postgres://user@host:notaport/db", "postgres://user@host:5432/"]
)
def test_a_malformed_database_url_is_refused(url):
    assert_refused(start({"DATABASE_URL": url}), "DATABASE_URL")


def test_manage_py_stops_with_one_line_on_a_bad_value():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={**os.environ, "DEBUG": "sometimes"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_refused(result, "DEBUG")


def test_multi_host_database_url_reaches_libpq_unchanged():
    url = "postgres://herald@/herald?host=db1,db2&port=5433,5434&target_session_attrs=read-write&connect_timeout=2"
    result = start({"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    db = json.loads(result.stdout)["db"]
    assert db["NAME"] == "herald"
    assert db["OPTIONS"]["host"] == "db1,db2"
    assert db["OPTIONS"]["port"] == "5433,5434"
    assert db["OPTIONS"]["target_session_attrs"] == "read-write"
    assert db["CONN_HEALTH_CHECKS"] is True


def test_secret_key_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-mounted-secret\n")
    result = start({"DEBUG": "false", "SECRET_KEY_FILE": str(secret_file)}, unset=("SECRET_KEY",))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["secret"] == "from-a-mounted-secret"


def test_an_unreadable_secret_file_is_refused(tmp_path):
    result = start({"SECRET_KEY_FILE": str(tmp_path / "missing")}, unset=("SECRET_KEY",))
    assert_refused(result, "SECRET_KEY_FILE")


def test_production_defaults_are_secure():
    result = start({"DEBUG": "false"}, unset=("HTTPS",))
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["secure_cookie"] is True
    assert settings["hsts"] >= 31536000
    assert settings["session"] == "django.contrib.sessions.backends.cached_db"


def test_sentinels_configure_cache_and_broker():
    result = start(
        {"REDIS_SENTINELS": "127.0.0.1:26379,127.0.0.1:26380", "REDIS_SENTINEL_MASTER": "herald"},
        unset=("CELERY_BROKER_URL",),
    )
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    cache = settings["caches"]["default"]
    assert cache["LOCATION"] == "redis://herald/0"
    assert cache["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.SentinelClient"
    assert cache["OPTIONS"]["IGNORE_EXCEPTIONS"] is True
    assert settings["broker"] == "sentinel://127.0.0.1:26379/1;sentinel://127.0.0.1:26380/1"
    assert settings["broker_options"]["master_name"] == "herald"


def test_bad_sentinel_list_is_refused():
    assert_refused(start({"REDIS_SENTINELS": "127.0.0.1:port"}), "REDIS_SENTINELS")


def test_celery_app_is_configured_for_at_least_once_delivery():
    from config.celery_app import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.accept_content == ["json"]
    assert {queue.name for queue in app.conf.task_queues} == {"send", "imports", "analytics", "default"}
    assert app.conf.task_time_limit and app.conf.task_soft_time_limit


@pytest.mark.parametrize(
    "value", ["api_latency=100", "api_latency=0", "api_latency=-5", "api_latency=abc", "uptime=99"]
)
def test_an_slo_target_outside_0_to_100_or_unknown_is_refused(value):
    assert_refused(start({"SLO_TARGETS": value}), "SLO_TARGETS")


def test_slo_targets_override_the_defaults():
    code = "import django; django.setup(); from django.conf import settings as s; print(s.SLO_TARGETS)"
    result = start({"SLO_TARGETS": "api_latency=99.5"}, code=code)
    assert result.returncode == 0, result.stderr
    assert "'api_latency': 99.5" in result.stdout and "'send_success': 99.9" in result.stdout
