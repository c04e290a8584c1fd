"""The real Celery worker tests rely on: it sees the test database and mails through the sink."""

import time

import pytest
from django.utils import timezone

from operations.models import Incident, IncidentUpdate, StatusSubscription
from operations.tasks import notify_status_subscribers
from tests.mail import outbox
from tests.workers import running_worker


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_task_queued_here_runs_on_a_worker_process_and_its_mail_reaches_the_sink(smtp_sink):
    StatusSubscription.objects.create(email="cto@client.test", confirmed_at="2026-01-01T00:00:00Z")
    incident = Incident.objects.create(
        title="Imports are slow", impact="minor", components=["imports"], started_at=timezone.now()
    )
    update = IncidentUpdate.objects.create(incident=incident, status="investigating", message="Looking into it.")

    with running_worker(queues=("default",)):
        notify_status_subscribers.delay(update.pk)
        deadline = time.monotonic() + 30
        while not outbox() and time.monotonic() < deadline:
            time.sleep(0.1)

    (message,) = outbox()
    assert message.to == ["cto@client.test"]
    assert "Imports are slow" in message.subject
