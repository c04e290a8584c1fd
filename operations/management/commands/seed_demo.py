"""`manage.py seed_demo`: the demo workspace and login that `make run` prints. Safe to run twice."""

from django.core.management.base import BaseCommand

from operations.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_seed


class Command(BaseCommand):
    help = (
        "Create (or refresh) the demo workspace and its owner login, with an audience, a template, a "
        "sender, a relay to the platform's SMTP server and a draft campaign."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", default=DEMO_EMAIL)
        parser.add_argument("--password", default=DEMO_PASSWORD)

    def handle(self, *args, email, password, **options):
        workspace = demo_seed(email=email, password=password)
        self.stdout.write(f"Demo workspace {workspace.name!r}: sign in as {email} / {password}")
