"""The sweeper: imports whose worker went silent are queued again; abandoned uploads are removed."""

from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.utils import timezone

from subscribers.imports import LEASE, imports_resume_stalled
from subscribers.models import Import
from subscribers.tasks import imports_sweep
from tests.subscribers.imports_helpers import csv_bytes, upload

pytestmark = pytest.mark.django_db

DATA = csv_bytes([["ann@example.com", "Ann", ""]])


def test_only_imports_silent_for_longer_than_the_lease_are_queued_again(team, django_capture_on_commit_callbacks):
    silent, busy = upload(team.a, DATA), upload(team.a, DATA)
    now = timezone.now()
    Import.objects.filter(pk=silent.pk).update(status="running", heartbeat_at=now - LEASE - timedelta(seconds=5))
    Import.objects.filter(pk=busy.pk).update(status="running", heartbeat_at=now - timedelta(seconds=5))
    with mock.patch("subscribers.imports._enqueue") as enqueue, django_capture_on_commit_callbacks(execute=True):
        assert imports_resume_stalled() == [silent.pk]
    enqueue.assert_called_once_with(silent.pk)
    assert Import.objects.get(pk=silent.pk).status == Import.Status.QUEUED
    assert Import.objects.get(pk=busy.pk).status == Import.Status.RUNNING


def test_a_queued_import_whose_message_was_lost_is_queued_again(team):
    imp = upload(team.a, DATA)
    old = timezone.now() - LEASE - timedelta(minutes=1)
    Import.objects.filter(pk=imp.pk).update(status="queued", queued_at=old, updated_at=old)
    with mock.patch("subscribers.imports._enqueue") as enqueue:
        assert imports_resume_stalled() == [imp.pk]
    enqueue.assert_called_once_with(imp.pk)


def test_uploads_never_mapped_are_removed_after_a_day(team):
    stale, fresh = upload(team.a, DATA), upload(team.a, DATA)
    Import.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=2))
    with mock.patch("subscribers.imports._enqueue"):
        imports_sweep()
    assert list(Import.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not Path(stale.file.path).exists() and Path(fresh.file.path).exists()
