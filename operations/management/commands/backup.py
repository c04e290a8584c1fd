"""`manage.py backup`: dump the database now (the same job beat runs on schedule)."""

from django.core.management.base import BaseCommand, CommandError

from operations.models import Backup
from operations.services import backup_create


class Command(BaseCommand):
    help = "Take a database backup (pg_dump, custom format) into BACKUP_DIR and prune old ones."

    def handle(self, *args, **options):
        backup = backup_create()
        if backup.status != Backup.Status.SUCCEEDED:
            raise CommandError(f"Backup failed: {backup.error}")
        self.stdout.write(
            f"Backup {backup.file_name}: {backup.size_bytes} bytes, "
            f"{sum(backup.table_counts.values())} rows in {len(backup.table_counts)} tables."
        )
