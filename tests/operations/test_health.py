"""/healthz, /readyz and /health with every dependency up (outages: test_degraded.py)."""

import pytest

from operations.lifecycle import begin_draining, stop_draining

TOKEN = {"HTTP_AUTHORIZATION": "Bearer test-health-token"}


@pytest.fixture
def draining():
    begin_draining()
    yield
    stop_draining()


def test_healthz_answers_without_touching_anything(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"


def test_readyz_reports_ready_as_json(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_readyz_turns_503_while_draining(client, draining):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "draining"
    assert client.get("/healthz").status_code == 200


def test_readyz_turns_503_when_the_drain_file_exists(client, settings, tmp_path):
    settings.DRAIN_FILE = str(tmp_path / "drain")
    assert client.get("/readyz").status_code == 200
    (tmp_path / "drain").touch()
    assert client.get("/readyz").status_code == 503


@pytest.mark.django_db
def test_health_without_token_shows_only_the_overall_status(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_health_with_a_wrong_token_shows_only_the_overall_status(client):
    response = client.get("/health", HTTP_AUTHORIZATION="Bearer nope")
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_health_with_the_token_details_every_component(client):
    response = client.get("/health", **TOKEN)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["components"]) == {"database", "redis", "broker", "backups"}
    for component in body["components"].values():
        assert component["status"] == "ok"
        assert component["latency_ms"] >= 0
    assert body["components"]["database"]["detail"] == {"role": "primary", "writable": True}


@pytest.mark.django_db
def test_health_is_never_cached(client):
    assert "no-cache" in client.get("/health")["Cache-Control"]


def test_health_endpoints_refuse_writes(client):
    assert client.post("/healthz").status_code == 405
