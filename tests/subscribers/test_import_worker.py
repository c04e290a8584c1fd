"""Imports on real Celery workers: one SIGKILLed mid-file, twice, ends exactly like an uninterrupted import."""

import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest

from subscribers.imports import import_configure, import_counts, import_error_report_path, imports_resume_stalled
from subscribers.models import Import
from tests.factories import MailingListFactory
from tests.subscribers.imports_helpers import csv_bytes, run_import, snapshot, upload
from tests.workers import running_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Small chunks and buckets make a small file take a few seconds, with many checkpoints to die between.
SMALL_STEPS = {"IMPORT_CHUNK_BYTES": "2048", "IMPORT_BUCKET_ROWS": "100", "IMPORT_WORKERS": "2"}


def rows(count: int):
    for i in range(count):
        if i % 40 == 3:
            yield [f"broken-{i}.example.com", f"Broken {i}", "x"]
        elif i % 50 == 9 and i > 50:
            yield [f"PERSON{i - 20}@EXAMPLE.COM", f"Repeat {i}", "y"]
        else:
            yield [f"person{i}@example.com", f"Person {i}", f"City {i % 13}"]


def wait_for(condition, timeout: float, what: str, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        imp = Import.objects.get()
        if condition(imp):
            return imp
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}: {Import.objects.values().get()}")


def test_a_killed_worker_is_resumed_without_doubling_anything(team, settings):
    settings.IMPORT_CHUNK_BYTES, settings.IMPORT_BUCKET_ROWS, settings.IMPORT_WORKERS = 2048, 100, 1
    data = csv_bytes(rows(12000))
    # The reference: the same file imported without interruption into the other workspace.
    reference = run_import(team.b, data, mailing_list=MailingListFactory(workspace=team.b, name="Newsletter"))
    assert reference.status == Import.Status.COMPLETED
    Import.objects.filter(pk=reference.pk).delete()

    imp = upload(team.a, data, mailing_list=MailingListFactory(workspace=team.a, name="Newsletter"))
    import_configure(imp=imp, mapping=imp.mapping)  # queued on the broker

    with running_worker(queues=("imports",), extra_env=SMALL_STEPS) as worker:
        wait_for(lambda i: i.chunks_staged >= 5, 60, "some chunks to be staged")
        worker.kill(signal.SIGKILL)
    killed = Import.objects.get()
    assert (killed.status, killed.phase) == (Import.Status.RUNNING, Import.Phase.STAGING)
    assert 0 < killed.byte_offset < len(data)

    with running_worker(queues=("imports",), extra_env=SMALL_STEPS) as worker:
        assert imports_resume_stalled(stale_after=timedelta(0)) == [imp.pk]
        wait_for(lambda i: len(i.buckets_done) >= 3, 60, "some buckets to be written")
        worker.kill(signal.SIGKILL)
    killed = Import.objects.get()
    assert (killed.status, killed.phase) == (Import.Status.RUNNING, Import.Phase.WRITING)
    assert len(killed.buckets_done) < killed.bucket_count

    with running_worker(queues=("imports",), extra_env=SMALL_STEPS):
        assert imports_resume_stalled(stale_after=timedelta(0)) == [imp.pk]
        done = wait_for(lambda i: i.is_finished, 60, "the import to finish", interval=0.1)

    assert done.status == Import.Status.COMPLETED, done.error_message
    assert done.attempt == 3
    assert import_counts(done) == import_counts(reference)
    assert import_counts(done)["total"] == 12000
    assert snapshot(team.a) == snapshot(team.b)
    ours = Path(import_error_report_path(done)).read_bytes()
    theirs = Path(import_error_report_path(reference)).read_bytes()
    assert ours == theirs and ours.count(b"\r\n") == done.rejected + 1


def test_a_second_delivery_of_a_running_import_does_nothing(team):
    imp = upload(team.a, csv_bytes(rows(200)))
    import_configure(imp=imp, mapping=imp.mapping)
    with running_worker(queues=("imports",)):
        done = wait_for(lambda i: i.is_finished, 60, "the import to finish", interval=0.1)
        from subscribers.tasks import import_run

        import_run.delay(imp.pk)  # a redelivered message after the import finished
        time.sleep(1)
    again = Import.objects.get()
    assert (again.status, again.attempt, import_counts(again)) == (done.status, 1, import_counts(done))
