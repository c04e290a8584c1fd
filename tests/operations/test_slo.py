"""Service level objectives: events are counted per minute, flushed idempotently, and reported."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from operations.models import SliMinute
from operations.slo import WindowFigure, objectives_report, sli_flush, sli_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEXT_MINUTE = timedelta(minutes=1)


def test_counted_events_reach_postgres_once_their_minute_is_over():
    for good in (True, True, True, False):
        sli_record(objective="api_latency", good=good)
    assert sli_flush() == 0  # the minute is still counting
    assert sli_flush(until=timezone.now() + NEXT_MINUTE) == 1
    row = SliMinute.objects.get()
    assert (row.objective, row.good, row.total, row.source) == ("api_latency", 3, 4, "buffer")


def test_flushing_twice_counts_once():
    sli_record(objective="dashboard_availability", good=True)
    from django_redis import get_redis_connection

    from operations.slo import PENDING_INDEX

    key = get_redis_connection("default").zrange(PENDING_INDEX, 0, -1)[0]
    sli_flush(until=timezone.now() + NEXT_MINUTE)
    get_redis_connection("default").zadd(PENDING_INDEX, {key: 0})  # as if the monitor died before forgetting it
    sli_flush(until=timezone.now() + NEXT_MINUTE)
    assert SliMinute.objects.get().total == 1


def test_events_are_counted_in_postgres_while_redis_is_unreachable():
    dead_redis = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.2},
        }
    }
    with override_settings(CACHES=dead_redis):
        sli_record(objective="api_latency", good=True)
        sli_record(objective="api_latency", good=False)
    row = SliMinute.objects.get()
    assert (row.source, row.good, row.total) == ("direct", 1, 2)


def test_api_requests_are_counted_against_the_latency_objective(client):
    client.get("/api/no-such-endpoint")
    client.get("/accounts/login/")  # not an API request
    sli_flush(until=timezone.now() + NEXT_MINUTE)
    row = SliMinute.objects.get(objective="api_latency")
    assert (row.good, row.total) == (1, 1)


def test_burn_rate_and_error_budget():
    figure = WindowFigure("1 h", good=990, total=1000, target=99.0)
    assert figure.percent == pytest.approx(99.0)
    assert figure.burn_rate == pytest.approx(1.0)
    assert figure.budget_left_percent == pytest.approx(0.0)
    calm = WindowFigure("30 d", good=9995, total=10000, target=99.9)
    assert calm.burn_rate == pytest.approx(0.5)
    assert calm.budget_left_percent == pytest.approx(50.0)
    assert WindowFigure("1 h", 0, 0, 99.0).burn_rate is None


def test_report_sums_each_window():
    now = timezone.now().replace(second=0, microsecond=0)
    SliMinute.objects.create(
        objective="api_latency", minute=now - timedelta(minutes=5), source="buffer", good=9, total=10
    )
    SliMinute.objects.create(
        objective="api_latency", minute=now - timedelta(hours=5), source="direct", good=0, total=10
    )
    report = {objective["key"]: objective for objective in objectives_report()}
    windows = {figure.window: figure for figure in report["api_latency"]["windows"]}
    assert (windows["1 h"].good, windows["1 h"].total) == (9, 10)
    assert (windows["24 h"].good, windows["24 h"].total) == (9, 20)
    assert report["api_latency"]["target"] == 95.0


def test_slo_page_shows_each_objective_to_operators(client):
    client.force_login(UserFactory(email="ops@herald.test", is_staff=True))
    SliMinute.objects.create(objective="api_latency", minute=timezone.now(), source="buffer", good=99, total=100)
    page = client.get(reverse("operations:slos")).content.decode()
    for title in ("Campaign send success", "API latency", "Dashboard availability", "Import latency"):
        assert title in page
    assert "99.000%" in page
    assert "No events in this window yet" in page


def test_slo_page_is_for_operators_only(alice_client):
    assert alice_client.get(reverse("operations:slos")).status_code == 302
