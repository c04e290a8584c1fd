"""Operations records: database backups and the restore drills that prove they can be restored."""

from django.db import models

from common.models import TimeStampedModel


class Backup(TimeStampedModel):
    """One pg_dump of the whole database, with the exact row counts of the snapshot it dumped."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True, help_text="Relative to BACKUP_DIR.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    table_counts = models.JSONField(default=dict, blank=True, help_text="Rows per table in the dumped snapshot.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # The health check and the restore drill ask for the newest successful backup.
            models.Index(
                fields=["-started_at"], name="operations_backup_ok_recent", condition=models.Q(status="succeeded")
            )
        ]

    def __str__(self) -> str:
        return f"Backup {self.started_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"


class RestoreDrill(TimeStampedModel):
    """A backup restored into a scratch database and checked against what it should contain."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    backup = models.ForeignKey(Backup, null=True, blank=True, on_delete=models.SET_NULL, related_name="drills")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    checks = models.JSONField(default=dict, blank=True, help_text="Per table: expected and restored rows, samples.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Restore drill {self.started_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"
