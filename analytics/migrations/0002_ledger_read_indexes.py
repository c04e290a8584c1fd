"""Indexes on other apps' tables for the incremental reads of analytics' syncs.

They serve only analytics.services.ledger_sync / unsubscribes_sync (rows after an
(updated_at, id) cursor), so they are created here; partial, to stay small.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("campaigns", "0001_initial"),
        ("subscribers", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS analytics_delivery_outcome_cursor ON campaigns_delivery (updated_at, id) "
            "WHERE status IN ('sent', 'failed', 'bounced', 'complained')",
            "DROP INDEX IF EXISTS analytics_delivery_outcome_cursor",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS analytics_membership_unsubscribe_cursor "
            "ON subscribers_listmembership (updated_at, id) WHERE status = 'unsubscribed'",
            "DROP INDEX IF EXISTS analytics_membership_unsubscribe_cursor",
        ),
        # The unsubscribe attribution: a subscriber's latest delivery sent before they left.
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS analytics_delivery_subscriber_sent "
            "ON campaigns_delivery (subscriber_id, sent_at) WHERE sent_at IS NOT NULL",
            "DROP INDEX IF EXISTS analytics_delivery_subscriber_sent",
        ),
    ]
