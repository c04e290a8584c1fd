"""Take in the bounce reports, complaints and unsubscribe requests waiting in the inbound mailbox."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campaigns.mailbox import mailbox_process


class Command(BaseCommand):
    help = (
        "Read DSN (RFC 3464) and ARF (RFC 5965) reports and mailto unsubscribe requests from the mailbox "
        "(BOUNCE_MAILBOX_DIR by default) and record them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--directory", default=None, help="mailbox directory (default: BOUNCE_MAILBOX_DIR)")
        parser.add_argument("--limit", type=int, default=500, help="messages to read at most (default: 500)")

    def handle(self, *args, directory=None, limit=500, **options):
        directory = directory or settings.BOUNCE_MAILBOX_DIR
        if not directory:
            raise CommandError("No mailbox: set BOUNCE_MAILBOX_DIR or pass --directory.")
        result = mailbox_process(directory=directory, limit=limit)
        self.stdout.write(
            f"Read {result.read} messages: {result.recorded} recorded, {result.duplicates} already known, "
            f"{result.unsubscribed} unsubscribes, {result.unmatched} about no one known, "
            f"{result.ignored} neither reports nor unsubscribes."
        )
