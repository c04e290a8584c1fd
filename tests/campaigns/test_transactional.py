"""Transactional messages a relay could not take at once are retried until their outcome is final."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_create
from campaigns import tasks
from campaigns.models import Relay, TransactionalMessage
from campaigns.transactional import transactional_claim_due, transactional_retry_due
from common.local_services import free_port
from common.smtp_sink import SmtpSink
from subscribers.models import Suppression
from tests.campaigns.helpers import FAST_WORKER_ENV, relay_for, wait_for
from tests.factories import RelayFactory, SenderFactory, TemplateFactory, WorkspaceFactory
from tests.workers import running_worker


@pytest.fixture
def sink(tmp_path):
    with SmtpSink(tmp_path / "relay") as running:
        yield running


@pytest.fixture
def fast_retries(settings):
    settings.SEND_RETRY_BASE_SECONDS = 1.0
    return settings


def post_message(client, key, workspace, *, to="buyer@example.org", **headers):
    sender = SenderFactory(workspace=workspace, email="receipts@shop.test")
    template = TemplateFactory(workspace=workspace, subject="Your receipt", html="<p>Thank you</p>")
    body = {"template_id": template.pk, "sender_id": sender.pk, "to": to}
    return client.post(
        "/api/messages",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        **headers,
    )


def get_message(client, key, message_id):
    return client.get(f"/api/messages/{message_id}", HTTP_AUTHORIZATION=f"Bearer {key}")


def make_due(record_id: int) -> None:
    TransactionalMessage.objects.filter(pk=record_id).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_deferred_message_is_sent_again_by_a_worker_once_the_relay_recovers(client, sink, fast_retries):
    workspace = WorkspaceFactory()
    _, key = api_key_create(workspace=workspace, name="shop", scope=ApiKey.Scope.WRITE)
    relay_for(sink, workspace=workspace, name="Only")
    sink.set_behaviour("tempfail")

    response = post_message(client, key, workspace, HTTP_IDEMPOTENCY_KEY="order-9")
    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["status"] == "deferred" and answer["attempts"] == 1 and "421" in answer["smtp_response"]
    assert answer["next_attempt_at"] is not None
    assert sink.count() == 0

    sink.set_behaviour("accept")
    with running_worker(queues=("send",), extra_env=FAST_WORKER_ENV):
        wait_for(
            lambda: TransactionalMessage.objects.get(pk=answer["id"]).status == "sent",
            timeout=60,
            interval=1.0,
            what="the retry to send the message",
            tick=tasks.transactional_retry.delay,  # what beat queues every 15 s
        )

    record = TransactionalMessage.objects.get(pk=answer["id"])
    assert record.attempts == 2 and record.next_attempt_at is None and bytes(record.payload) == b""
    messages = sink.messages()
    assert len(messages) == 1
    # The very message the API answered about: same Message-ID, same recipient.
    assert messages[0]["Message-ID"] == answer["message_id"]
    assert messages[0]["X-Sink-Rcpt-To"] == "buyer@example.org"
    status = get_message(client, key, answer["id"]).json()
    assert status["status"] == "sent" and status["attempts"] == 2 and status["sent_at"]


@pytest.mark.django_db
def test_with_every_relay_down_the_message_waits_instead_of_failing(client, sink, fast_retries):
    workspace = WorkspaceFactory()
    _, key = api_key_create(workspace=workspace, name="shop", scope=ApiKey.Scope.WRITE)
    relay = RelayFactory(workspace=workspace, host="127.0.0.1", port=free_port(), tls_mode="none")

    response = post_message(client, key, workspace)
    assert response.status_code == 202 and response.json()["status"] == "deferred"
    record_id = response.json()["id"]

    # The relay comes back where the sink listens; the next due retry sends the same message.
    Relay.objects.filter(pk=relay.pk).update(port=sink.port, circuit_state=Relay.Circuit.CLOSED)
    make_due(record_id)
    result = transactional_retry_due()
    assert (result.attempted, result.sent) == (1, 1)
    assert sink.count() == 1
    assert sink.messages()[0]["Message-ID"] == response.json()["message_id"]


@pytest.mark.django_db
def test_retries_stop_at_the_attempt_limit_with_the_last_answer(client, sink, settings):
    settings.SEND_MAX_ATTEMPTS = 3
    workspace = WorkspaceFactory()
    _, key = api_key_create(workspace=workspace, name="shop", scope=ApiKey.Scope.WRITE)
    relay_for(sink, workspace=workspace, name="Busy")
    sink.set_behaviour("tempfail")
    record_id = post_message(client, key, workspace).json()["id"]

    for expected in ("deferred", "failed"):
        Relay.objects.update(circuit_state=Relay.Circuit.CLOSED, circuit_failures=0)
        make_due(record_id)
        assert transactional_retry_due().attempted == 1
        assert TransactionalMessage.objects.get(pk=record_id).status == expected

    record = TransactionalMessage.objects.get(pk=record_id)
    assert record.attempts == 3 and record.next_attempt_at is None
    assert record.smtp_response.startswith("Gave up after 3 attempts; last answer:") and "421" in record.smtp_response
    assert bytes(record.payload) == b""
    # Final: later runs leave it alone.
    assert transactional_retry_due().attempted == 0
    assert sink.count() == 0


@pytest.mark.django_db
def test_a_retry_refused_as_unknown_bounces_and_suppresses_the_address(client, sink, fast_retries):
    workspace = WorkspaceFactory()
    _, key = api_key_create(workspace=workspace, name="shop", scope=ApiKey.Scope.WRITE)
    relay_for(sink, workspace=workspace, name="Only")
    sink.set_behaviour("tempfail")
    record_id = post_message(client, key, workspace, to="gone@example.org").json()["id"]

    sink.set_behaviour("reject")
    Relay.objects.update(circuit_state=Relay.Circuit.CLOSED, circuit_failures=0)
    make_due(record_id)
    assert transactional_retry_due().bounced == 1
    record = TransactionalMessage.objects.get(pk=record_id)
    assert record.status == "bounced" and record.smtp_code == 550
    assert Suppression.objects.filter(workspace=workspace, value="gone@example.org", reason="hard_bounce").exists()


@pytest.mark.django_db
def test_a_message_not_yet_due_is_left_alone_and_a_claimed_one_is_not_claimed_twice(client, sink):
    workspace = WorkspaceFactory()
    _, key = api_key_create(workspace=workspace, name="shop", scope=ApiKey.Scope.WRITE)
    relay_for(sink, workspace=workspace, name="Only")
    sink.set_behaviour("tempfail")
    record_id = post_message(client, key, workspace).json()["id"]

    assert transactional_claim_due() == []  # its next attempt lies in the future
    make_due(record_id)
    assert transactional_claim_due() == [record_id]
    assert transactional_claim_due() == []  # leased to the first caller
    assert TransactionalMessage.objects.get(pk=record_id).next_attempt_at > timezone.now() + timedelta(seconds=60)


@pytest.mark.django_db
def test_another_workspace_cannot_read_a_message(client, team):
    record = TransactionalMessage.objects.create(workspace=team.a, to_email="a@example.org", status="sent")
    _, own = api_key_create(workspace=team.a, name="read", scope=ApiKey.Scope.READ)
    _, stranger = api_key_create(workspace=team.b, name="other", scope=ApiKey.Scope.WRITE)
    assert get_message(client, own, record.pk).json()["to"] == "a@example.org"
    assert get_message(client, stranger, record.pk).status_code == 404
