"""`manage.py createworkspace NAME --owner EMAIL`: an operator creates a client's workspace."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from accounts.services import user_get_or_create, workspace_create


class Command(BaseCommand):
    help = "Create a workspace (a client of the platform) with its first owner."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The workspace's display name.")
        parser.add_argument("--owner", required=True, help="The owner's email; the user is created if new.")
        parser.add_argument("--slug", help="URL-safe identifier (default: derived from the name).")
        parser.add_argument(
            "--password-file",
            help="A file holding the new owner's password (default: one is generated and printed).",
        )

    def handle(self, *args, name, owner, slug, password_file, **options):
        try:
            validate_email(owner)
        except ValidationError:
            raise CommandError(f"--owner must be an email address, got {owner!r}.") from None
        password = None
        if password_file:
            try:
                with open(password_file) as handle:
                    password = handle.read().strip()
            except OSError as exc:
                raise CommandError(f"Cannot read --password-file: {exc.strerror}.") from None
        try:
            with transaction.atomic():
                user, generated = user_get_or_create(email=owner, password=password)
                workspace = workspace_create(name=name, owner=user, slug=slug)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Created workspace {workspace.name!r} (slug {workspace.slug})."))
        self.stdout.write(f"Owner: {user.email}")
        if generated:
            self.stdout.write(f"Password: {generated}")
