"""Backups restore: a dump taken under load restores into a scratch instance and checks out; a
corrupted one fails the drill loudly."""

import shutil
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Workspace
from operations import health
from operations.models import Backup, RestoreDrill
from operations.services import backup_create, backups_prune, restore_drill_run
from tests.factories import MemberFactory, WorkspaceFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


def test_a_backup_records_the_exact_contents_of_its_snapshot(backup_dir):
    for _ in range(3):
        MemberFactory()
    backup = backup_create()
    assert backup.status == Backup.Status.SUCCEEDED
    path = Path(backup_dir) / backup.file_name
    assert path.exists() and path.stat().st_size == backup.size_bytes
    assert backup.table_counts["accounts_workspace"] == 3
    assert backup.table_counts["accounts_member"] == 3
    assert len(backup.sha256) == 64


def test_a_backup_restores_and_passes_the_drill():
    for _ in range(4):
        MemberFactory()
    backup = backup_create()
    drill = restore_drill_run()
    assert drill.status == RestoreDrill.Status.PASSED, drill.error
    assert drill.backup == backup
    assert drill.checks["accounts_member"] == {"expected": 4, "restored": 4, "sampled": 4}


def test_a_backup_taken_during_writes_restores_exactly_what_it_captured():
    MemberFactory()
    stop = threading.Event()

    def keep_writing():
        from django.db import connection

        n = 0
        while not stop.is_set():
            WorkspaceFactory(slug=f"busy-{n}")
            n += 1
        connection.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        backup = backup_create()
    finally:
        stop.set()
        writer.join()
    assert backup.status == Backup.Status.SUCCEEDED
    assert Workspace.objects.count() > backup.table_counts["accounts_workspace"] >= 1
    drill = restore_drill_run(backup=backup)
    assert drill.status == RestoreDrill.Status.PASSED, drill.error


def test_a_corrupted_backup_fails_the_drill_loudly(backup_dir):
    MemberFactory()
    backup = backup_create()
    path = Path(backup_dir) / backup.file_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="Restore drill FAILED: .*corrupted"):
        call_command("restore_drill")
    drill = RestoreDrill.objects.get()
    assert drill.status == RestoreDrill.Status.FAILED


def test_a_damaged_dump_that_cannot_be_restored_fails_the_drill(backup_dir):
    MemberFactory()
    backup = backup_create()
    path = Path(backup_dir) / backup.file_name
    path.write_bytes(path.read_bytes()[: backup.size_bytes // 2])
    # Even if the recorded checksum were rewritten to match, the restore itself must fail.
    from operations.lib.postgres_tools import sha256_of

    Backup.objects.filter(pk=backup.pk).update(sha256=sha256_of(path))
    drill = restore_drill_run()
    assert drill.status == RestoreDrill.Status.FAILED
    assert "could not be restored" in drill.error


def test_a_drill_without_any_backup_fails():
    drill = restore_drill_run()
    assert drill.status == RestoreDrill.Status.FAILED
    assert "no successful backup" in drill.error


def test_commands_report_what_they_did(capsys):
    MemberFactory()
    call_command("backup")
    assert "rows in" in capsys.readouterr().out
    call_command("restore_drill")
    assert "Restore drill passed" in capsys.readouterr().out


def test_restore_drill_refuses_an_unknown_backup_id():
    with pytest.raises(CommandError, match="no successful backup with id 999"):
        call_command("restore_drill", "--backup", "999")


def test_old_backups_are_pruned(backup_dir):
    backups = [backup_create() for _ in range(3)]
    assert backups_prune(keep=1) == 2
    assert list(Backup.objects.values_list("pk", flat=True)) == [backups[-1].pk]
    assert [p.name for p in Path(backup_dir).iterdir()] == [backups[-1].file_name]


def test_health_degrades_when_the_last_backup_is_too_old(settings):
    backup_create()
    assert health.check_all()["components"]["backups"]["status"] == "ok"
    Backup.objects.update(started_at=timezone.now() - timedelta(hours=settings.BACKUP_MAX_AGE_HOURS + 1))
    component = health.check_all()["components"]["backups"]
    assert component["status"] == "degraded"
    assert "no backup within BACKUP_MAX_AGE_HOURS" in component["detail"]["problems"]


def test_health_degrades_when_the_last_drill_failed():
    restore_drill_run()  # no backup: fails
    component = health.check_all()["components"]["backups"]
    assert component["status"] == "degraded"
    assert component["detail"]["last_restore_drill_status"] == "failed"


def test_a_backup_taken_while_a_campaign_sends_restores_with_a_consistent_ledger(settings, tmp_path):
    """The snapshot holds the ledger mid-send: every recipient's row, and counters that match it."""
    from campaigns import services as campaign_services
    from campaigns.models import Campaign
    from common.local_services import LocalPostgres, service_tempdir, stop_process
    from common.smtp_sink import SmtpSink
    from operations.lib import postgres_tools
    from tests.campaigns.helpers import FAST_WORKER_ENV, campaign_status, make_audience, relay_for, wait_for
    from tests.factories import CampaignFactory
    from tests.workers import running_worker

    for name, value in FAST_WORKER_ENV.items():
        setattr(settings, name, type(getattr(settings, name))(value))
    sink = SmtpSink(tmp_path / "sink").start()
    try:
        workspace = WorkspaceFactory()
        audience = make_audience(workspace=workspace, count=600)
        relay_for(sink, workspace=workspace, name="Primary")
        campaign = CampaignFactory(workspace=workspace, rate_limit_per_second=60)  # about 10 s of sending
        campaign.lists.set([audience])
        with running_worker(queues=("send",), concurrency=2, extra_env=FAST_WORKER_ENV):
            campaign_services.campaign_schedule(campaign=campaign)
            campaign_services.campaign_start(campaign_id=campaign.pk)
            wait_for(
                lambda: Campaign.objects.get(pk=campaign.pk).sent_count >= 100, timeout=60, what="sending under way"
            )
            backup = backup_create()
            at_backup = Campaign.objects.get(pk=campaign.pk)
            wait_for(lambda: campaign_status(campaign) == "sent", timeout=90, what="the campaign to finish")
    finally:
        sink.stop()
    assert backup.status == Backup.Status.SUCCEEDED
    assert at_backup.status == Campaign.Status.SENDING and at_backup.sent_count < 600

    drill = restore_drill_run(backup=backup)
    assert drill.status == RestoreDrill.Status.PASSED, drill.error
    assert drill.checks["campaigns_delivery"]["expected"] == drill.checks["campaigns_delivery"]["restored"] == 600

    # The restored copy on its own: the campaign's counters agree with its ledger rows.
    scratch_directory = service_tempdir("herald-restore-check-")
    scratch = LocalPostgres(scratch_directory / "postgres").start(fast_and_unsafe=True)
    try:
        postgres_tools.run(
            "pg_restore", "--no-owner", "--no-privileges", f"--dbname={scratch.url}", str(backup_dir_path(backup))
        )
        with psycopg.connect(scratch.url) as restored:
            status, recipients, sent_count = restored.execute(
                "SELECT status, recipient_count, sent_count FROM campaigns_campaign WHERE id = %s", [campaign.pk]
            ).fetchone()
            rows, sent_rows = restored.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'sent') FROM campaigns_delivery"
                " WHERE campaign_id = %s",
                [campaign.pk],
            ).fetchone()
    finally:
        stop_process(scratch.process)
        shutil.rmtree(scratch_directory, ignore_errors=True)
    print(f"backup mid-send: {sent_rows} of {rows} deliveries sent in the snapshot; campaign counter {sent_count}")
    assert status == "sending"
    assert rows == recipients == 600
    assert sent_rows == sent_count and 0 < sent_rows < 600


def backup_dir_path(backup) -> Path:
    from django.conf import settings

    return Path(settings.BACKUP_DIR) / backup.file_name
