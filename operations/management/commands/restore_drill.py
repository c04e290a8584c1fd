"""`manage.py restore_drill`: restore the newest backup into a scratch database and check it."""

from django.core.management.base import BaseCommand, CommandError

from operations.models import Backup, RestoreDrill
from operations.services import restore_drill_run


class Command(BaseCommand):
    help = "Restore the newest (or a chosen) backup into a scratch database and verify its contents."

    def add_arguments(self, parser):
        parser.add_argument("--backup", type=int, help="The id of the backup to restore (default: the newest).")

    def handle(self, *args, backup, **options):
        chosen = None
        if backup is not None:
            chosen = Backup.objects.filter(pk=backup, status=Backup.Status.SUCCEEDED).first()
            if chosen is None:
                raise CommandError(f"There is no successful backup with id {backup}.")
        drill = restore_drill_run(backup=chosen)
        if drill.status != RestoreDrill.Status.PASSED:
            raise CommandError(f"Restore drill FAILED: {drill.error}")
        restored = sum(check["restored"] for check in drill.checks.values())
        sampled = sum(check["sampled"] for check in drill.checks.values())
        self.stdout.write(
            f"Restore drill passed: {restored} rows in {len(drill.checks)} tables match the backup; "
            f"{sampled} sampled rows match the live database."
        )
