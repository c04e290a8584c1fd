"""/metrics: token-protected Prometheus exposition of requests, tasks, queues and the database."""

import re

import pytest
from django.urls import reverse

from config.celery_app import app as celery_app
from operations.tasks import notify_status_subscribers

pytestmark = pytest.mark.django_db

TOKEN = {"HTTP_AUTHORIZATION": "Bearer test-health-token"}


def sample(body: str, name: str, **labels) -> float | None:
    for line in body.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def scrape(client) -> str:
    response = client.get("/metrics", **TOKEN)
    assert response.status_code == 200
    return response.content.decode()


def test_metrics_need_the_token(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_requests_are_timed_and_counted_by_view(alice_client):
    before = sample(scrape(alice_client), "herald_http_requests_total", view="dashboard", status="200") or 0
    alice_client.get(reverse("dashboard"))
    body = scrape(alice_client)
    assert sample(body, "herald_http_requests_total", view="dashboard", status="200") == before + 1
    assert sample(body, "herald_http_request_duration_seconds_count", view="dashboard") >= 1


def test_queue_depths_and_database_connections_are_read_at_scrape_time(client):
    for _ in range(3):
        celery_app.send_task("tests.never_runs", queue="analytics")
    try:
        body = scrape(client)
        assert sample(body, "herald_celery_queue_depth", queue="analytics") == 3
        assert re.search(r'^herald_database_connections\{state="active"\} [1-9]', body, re.MULTILINE)
    finally:
        with celery_app.connection_for_write() as connection:
            connection.default_channel.queue_purge("analytics")


def test_finished_tasks_are_counted(client):
    before = sample(scrape(client), "herald_celery_tasks_total", task="operations.notify_status_subscribers") or 0
    notify_status_subscribers.apply(args=[0])
    after = sample(
        scrape(client), "herald_celery_tasks_total", task="operations.notify_status_subscribers", outcome="success"
    )
    assert after == before + 1
