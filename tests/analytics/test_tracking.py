"""The open pixel and click redirect: tokens, the buffer, the drain, outages, bots."""

from __future__ import annotations

import time

import pytest
import redis
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from analytics import buffer, services
from analytics.models import CampaignRollup, Event, LinkRollup, RecipientActivity
from campaigns.lib.tracking import make_delivery_token
from common.local_services import free_port
from tests.analytics.helpers import LINKS, click, drain, open_, sent_campaign, token_for
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace():
    return WorkspaceFactory()


def rollup(campaign) -> CampaignRollup:
    return CampaignRollup.objects.get(campaign=campaign)


def test_a_click_redirects_to_the_campaigns_link_and_is_counted_once_drained(workspace):
    campaign, (first, second, third) = sent_campaign(workspace=workspace)
    response = click(first, 1)
    assert response.status_code == 302
    assert response["Location"] == LINKS[1]
    assert "no-store" in response["Cache-Control"]
    assert not Event.objects.exists(), "the click waits in the stream until the drain"
    assert buffer.stream_length() == 1

    assert drain() == 1
    assert buffer.stream_length() == 0
    event = Event.objects.get()
    assert (event.type, event.delivery_id, event.link_position, event.is_bot) == ("clicked", first.pk, 1, False)
    assert (event.client, event.device) == ("Safari", "desktop")
    click(first, 1)
    click(second, 1)
    click(third, 2)
    drain()
    totals = rollup(campaign)
    assert (totals.clicks, totals.unique_clicks) == (4, 3)
    links = {r.position: (r.clicks, r.unique_clicks) for r in LinkRollup.objects.filter(campaign=campaign)}
    assert links == {1: (3, 2), 2: (1, 1)}
    activity = RecipientActivity.objects.get(delivery_id=first.pk)
    assert (activity.clicks, activity.clicked_positions) == (2, [1])


def test_opens_answer_a_gif_and_count_unique_recipients(workspace):
    campaign, (first, second, _) = sent_campaign(workspace=workspace)
    for delivery in (first, first, second):
        response = open_(delivery)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/gif"
        assert response.content.startswith(b"GIF89a")
    drain()
    totals = rollup(campaign)
    assert (totals.opens, totals.unique_opens, totals.bot_opens) == (3, 2, 0)


def test_the_fast_path_touches_neither_database_nor_session_once_the_links_are_cached(workspace):
    _, (first, *_) = sent_campaign(workspace=workspace)
    click(first, 0)  # loads the link table once
    with CaptureQueriesContext(connection) as queries:
        response = click(first, 0)
        pixel = open_(first)
    assert response.status_code == 302 and pixel.status_code == 200
    assert len(queries) == 0, [q["sql"] for q in queries]
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers


def test_draining_again_after_a_crash_counts_nothing_twice(workspace):
    campaign, (first, *_) = sent_campaign(workspace=workspace)
    click(first, 0)
    open_(first)
    entries = buffer.stream_read(100)
    events = [event for _, event in entries]
    # The drain stored them, then died before trimming the stream: the next drain reads them again.
    services.events_ingest(events=events)
    assert drain() == 2
    assert services.events_ingest(events=events) == 0
    assert Event.objects.count() == 2
    totals = rollup(campaign)
    assert (totals.opens, totals.clicks, totals.unique_opens, totals.unique_clicks) == (1, 1, 1, 1)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda token, other: token[:-4], id="cut short"),
        pytest.param(lambda token, other: token[:10], id="cut very short"),
        pytest.param(lambda token, other: token[:-1] + ("A" if token[-1] != "A" else "B"), id="last char changed"),
        pytest.param(lambda token, other: "not-a-token-at-all-really", id="garbage"),
        pytest.param(lambda token, other: other, id="another campaign's workspace"),
    ],
)
def test_bad_tokens_are_404_and_never_redirect(workspace, mangle):
    _, (first, *_) = sent_campaign(workspace=workspace)
    # Signed by Herald but naming workspace B with workspace A's campaign.
    other = make_delivery_token(workspace_id=WorkspaceFactory().pk, campaign_id=first.campaign_id, delivery_id=first.pk)
    token = mangle(token_for(first), other)
    from django.test import Client

    for path in (f"/t/c/{token}/0", f"/t/o/{token}.gif"):
        response = Client().get(path)
        assert response.status_code == 404, path
        assert "Location" not in response
    assert buffer.stream_length() == 0


def test_a_token_signed_with_another_key_is_404(workspace):
    _, (first, *_) = sent_campaign(workspace=workspace)
    with override_settings(SECRET_KEY="an-attacker-s-own-secret-key-0123456789"):
        forged = token_for(first)
    from django.test import Client

    assert Client().get(f"/t/c/{forged}/0").status_code == 404
    assert Client().get(f"/t/o/{forged}.gif").status_code == 404


def test_a_position_the_campaign_does_not_have_is_404(workspace):
    _, (first, *_) = sent_campaign(workspace=workspace)
    assert click(first, len(LINKS)).status_code == 404
    assert click(first, 99999).status_code == 404
    from django.test import Client

    assert Client().get(f"/t/c/{token_for(first)}/-1").status_code == 404
    assert Client().get(f"/t/c/{token_for(first)}/https:%2F%2Fevil.example").status_code == 404


def test_a_campaign_with_a_non_web_link_never_redirects_to_it(workspace):
    _, (first, *_) = sent_campaign(workspace=workspace, links=["javascript:alert(1)", "https://ok.example/"])
    assert click(first, 0).status_code == 404
    assert click(first, 1)["Location"] == "https://ok.example/"


def dead_redis():
    return redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)


def test_with_redis_down_events_go_straight_to_postgres(workspace, monkeypatch):
    campaign, (first, second, _) = sent_campaign(workspace=workspace)
    click(first, 0)  # link table cached in-process
    drain()
    monkeypatch.setattr(buffer, "redis_client", dead_redis)
    response = click(second, 2)
    assert response.status_code == 302 and response["Location"] == LINKS[2]
    assert rollup(campaign).clicks == 2
    assert Event.objects.filter(link_position=2).count() == 1


@pytest.mark.django_db(transaction=True)
def test_with_redis_and_postgres_down_the_click_still_redirects_and_is_spooled(workspace, monkeypatch, settings):
    campaign, (first, second, _) = sent_campaign(workspace=workspace)
    click(first, 0)
    drain()
    monkeypatch.setattr(buffer, "redis_client", dead_redis)
    real_ingest = services.events_ingest

    def database_down(**kwargs):
        from django.db import OperationalError

        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "events_ingest", database_down)
    settings.ANALYTICS_SPOOL_RETRY_SECONDS = 0.2
    response = click(second, 1)
    assert response.status_code == 302 and response["Location"] == LINKS[1]
    spooled = list(settings.ANALYTICS_SPOOL_DIR.glob("events-*.jsonl"))
    assert spooled and spooled[0].read_text().count("\n") == 1

    # Postgres is back (Redis still down): the process's flusher moves the spool into Postgres.
    monkeypatch.setattr(services, "events_ingest", real_ingest)
    deadline = time.monotonic() + 10
    while any(settings.ANALYTICS_SPOOL_DIR.glob("events-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(settings.ANALYTICS_SPOOL_DIR.glob("events-*"))
    assert rollup(campaign).clicks == 2
    assert Event.objects.filter(link_position=1).count() == 1


def test_apple_privacy_proxy_and_scanners_are_flagged_not_counted(workspace):
    campaign, (first, second, third) = sent_campaign(workspace=workspace)
    open_(first, ua="Mozilla/5.0", ip="17.58.101.3")
    click(second, 0, ua="Mozilla/5.0 (compatible; Barracuda Sentinel)")
    open_(third, ua="python-requests/2.31")
    drain()
    flagged = dict(Event.objects.values_list("delivery_id", "bot_reason"))
    assert flagged == {first.pk: "apple_mpp", second.pk: "scanner_user_agent", third.pk: "scanner_user_agent"}
    totals = rollup(campaign)
    assert (totals.opens, totals.unique_opens, totals.clicks, totals.bot_opens, totals.bot_clicks) == (0, 0, 0, 2, 1)


def test_a_click_right_after_delivery_and_every_link_at_once_are_scanners(workspace):
    from datetime import timedelta

    campaign, (just_sent,) = sent_campaign(workspace=workspace, recipients=1, sent_ago=timedelta(seconds=0))
    click(just_sent, 0)
    _, (sweeper, person) = sent_campaign(workspace=workspace, recipients=2)
    for position in range(len(LINKS)):
        click(sweeper, position)
    click(person, 0)
    drain()
    reasons = {(e.delivery_id, e.link_position): e.bot_reason for e in Event.objects.all()}
    assert reasons[(just_sent.pk, 0)] == "too_soon_after_delivery"
    assert {reasons[(sweeper.pk, p)] for p in range(len(LINKS))} == {"every_link_at_once"}
    assert reasons[(person.pk, 0)] == ""
    assert rollup(campaign).clicks == 0


def test_ledger_outcomes_become_events_and_totals_once(workspace, settings):
    from campaigns.models import Delivery

    settings.ANALYTICS_LEDGER_SETTLE_SECONDS = 0
    campaign, (a, b, c) = sent_campaign(workspace=workspace)
    Delivery.objects.filter(pk=b.pk).update(status="bounced", smtp_code=550, smtp_response="550 5.1.1 no such user")
    Delivery.objects.filter(pk=c.pk).update(status="complained")
    time.sleep(0.01)
    assert services.ledger_sync() == 3
    assert services.ledger_sync() == 0
    totals = rollup(campaign)
    assert (totals.sent, totals.delivered, totals.bounced, totals.complained) == (3, 2, 1, 1)
    # Read again from the start (a lost cursor): nothing is counted twice.
    from analytics.models import Cursor, OutcomeRollup

    Cursor.objects.all().delete()
    services.ledger_sync()
    totals = rollup(campaign)
    assert (totals.sent, totals.delivered, totals.bounced, totals.complained) == (3, 2, 1, 1)
    assert OutcomeRollup.objects.get(campaign=campaign, outcome="bounced").reason == "5.1.1 Mailbox does not exist"


def wsgi_get(path: str, *, method: str = "GET", ua: str = "Mozilla/5.0 (X11; Linux) Firefox/130.0"):
    """Call the production WSGI application (config.wsgi, with the tracking fast path) directly."""
    import io

    from django.core import signals
    from django.db import close_old_connections

    from config.wsgi import application

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": ua,
        "REMOTE_ADDR": "198.51.100.3",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    # As Django's test client does: the test's transaction must survive the request signals.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(application(environ, start_response))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], body


def test_the_wsgi_fast_path_answers_like_the_views(workspace):
    campaign, (first, second, _) = sent_campaign(workspace=workspace)
    status, headers, _ = wsgi_get(f"/t/c/{token_for(first)}/2")
    assert (status, headers["Location"]) == (302, LINKS[2])
    status, headers, body = wsgi_get(f"/t/o/{token_for(second)}.gif")
    assert status == 200 and headers["Content-Type"] == "image/gif" and body.startswith(b"GIF89a")
    assert headers["Cache-Control"] == "no-store, private"
    status, _, body = wsgi_get(f"/t/o/{token_for(second)}.gif", method="HEAD")
    assert status == 200 and body == b""
    assert wsgi_get(f"/t/c/{token_for(first)[:-3]}/0")[0] == 404
    assert wsgi_get(f"/t/c/{token_for(first)}/3")[0] == 404
    assert wsgi_get(f"/t/c/{token_for(first)}/0/extra")[0] == 404  # not a tracking path: Django's 404
    with CaptureQueriesContext(connection) as queries:
        assert wsgi_get(f"/t/c/{token_for(second)}/0")[0] == 302
    assert len(queries) == 0
    drain()
    assert rollup(campaign).clicks == 2 and rollup(campaign).opens == 2
