from django.db import migrations, models


def fail_deferred_without_payload(apps, schema_editor):
    # Messages deferred before retries existed kept no bytes to send again: say so, not "deferred" forever.
    TransactionalMessage = apps.get_model("campaigns", "TransactionalMessage")
    TransactionalMessage.objects.filter(status="deferred").update(
        status="failed", smtp_response="Deferred before Herald retried transactional messages; not retried."
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_apikey_idempotencyrecord"),
        ("campaigns", "0002_transactional_message"),
    ]

    operations = [
        migrations.AddField(
            model_name="transactionalmessage",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="transactionalmessage",
            name="mail_from",
            field=models.CharField(blank=True, max_length=254),
        ),
        migrations.AddField(
            model_name="transactionalmessage",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="transactionalmessage",
            name="payload",
            field=models.BinaryField(blank=True, default=b""),
        ),
        migrations.AddIndex(
            model_name="transactionalmessage",
            index=models.Index(
                condition=models.Q(("status", "deferred")),
                fields=["next_attempt_at"],
                name="campaigns_transactional_due",
            ),
        ),
        migrations.RunPython(fail_deferred_without_payload, migrations.RunPython.noop),
    ]
