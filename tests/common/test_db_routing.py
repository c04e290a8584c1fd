"""The database router: report reads go to the standby, except for a browser that has just written."""

import time
from types import SimpleNamespace

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from common import db_routing
from common.db_routing import PIN_COOKIE, PrimaryReplicaRouter, ReplicaPinningMiddleware

REPORT = SimpleNamespace(_meta=SimpleNamespace(app_label="analytics"))
ACCOUNT = SimpleNamespace(_meta=SimpleNamespace(app_label="accounts"))


@pytest.fixture
def with_replica(monkeypatch):
    monkeypatch.setattr(db_routing, "replica_configured", lambda: True)


def where_reports_are_read(request, *, write: bool = False):
    """Run a request through the middleware; the view says where a report read would go."""
    router = PrimaryReplicaRouter()

    def view(request):
        if write:
            router.db_for_write(ACCOUNT)
        return HttpResponse(router.db_for_read(REPORT))

    response = ReplicaPinningMiddleware(view)(request)
    return response.content.decode(), response


def test_without_a_replica_everything_reads_the_primary():
    router = PrimaryReplicaRouter()
    assert router.db_for_read(REPORT) == "default"
    assert router.db_for_read(ACCOUNT) == "default"
    assert where_reports_are_read(RequestFactory().post("/"))[1].cookies.get(PIN_COOKIE) is None


def test_reports_read_the_replica_and_everything_else_the_primary(with_replica, settings):
    settings.DATABASE_REPLICA_APPS = ["analytics"]
    router = PrimaryReplicaRouter()
    assert where_reports_are_read(RequestFactory().get("/"))[0] == "replica"
    assert router.db_for_read(ACCOUNT) == "default"
    assert router.db_for_write(REPORT) == "default"


def test_a_request_that_wrote_reads_the_primary_for_the_rest_of_it(with_replica):
    where, response = where_reports_are_read(RequestFactory().get("/"), write=True)
    assert where == "default"
    assert float(response.cookies[PIN_COOKIE].value) > time.time()


def test_after_a_write_the_browser_reads_the_primary_for_a_few_seconds(with_replica, settings):
    settings.DATABASE_PIN_SECONDS = 5
    where, response = where_reports_are_read(RequestFactory().post("/"))
    assert where == "default"
    pinned_until = float(response.cookies[PIN_COOKIE].value)
    assert time.time() + 4 < pinned_until <= time.time() + 5.01
    assert response.cookies[PIN_COOKIE]["max-age"] == 5

    again = RequestFactory().get("/")
    again.COOKIES[PIN_COOKIE] = str(pinned_until)
    assert where_reports_are_read(again)[0] == "default"

    later = RequestFactory().get("/")
    later.COOKIES[PIN_COOKIE] = str(time.time() - 1)
    assert where_reports_are_read(later)[0] == "replica"

    garbled = RequestFactory().get("/")
    garbled.COOKIES[PIN_COOKIE] = "not-a-time"
    assert where_reports_are_read(garbled)[0] == "replica"


def test_the_pin_does_not_leak_into_the_next_request_on_the_same_thread(with_replica):
    where_reports_are_read(RequestFactory().post("/"), write=True)
    assert where_reports_are_read(RequestFactory().get("/"))[0] == "replica"


def test_migrations_never_run_on_the_replica():
    router = PrimaryReplicaRouter()
    assert router.allow_migrate("replica", "accounts") is False
    assert router.allow_migrate("default", "accounts") is None
