"""`manage.py seed_demo`: the demo workspace and login that `make run` prints. Safe to run twice."""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Member, User, Workspace
from accounts.services import member_add, workspace_create

DEMO_EMAIL = "demo@herald.test"
DEMO_PASSWORD = "herald-demo-password"
DEMO_WORKSPACE_SLUG = "demo"


class Command(BaseCommand):
    help = "Create (or refresh) the demo workspace and its owner login."

    def add_arguments(self, parser):
        parser.add_argument("--email", default=DEMO_EMAIL)
        parser.add_argument("--password", default=DEMO_PASSWORD)

    @transaction.atomic
    def handle(self, *args, email, password, **options):
        user = User.objects.filter(email=email).first() or User.objects.create_user(email=email, password=password)
        user.set_password(password)
        user.is_staff = user.is_superuser = True  # the demo login also opens the admin
        user.save()
        workspace = Workspace.objects.filter(slug=DEMO_WORKSPACE_SLUG).first()
        if workspace is None:
            workspace = workspace_create(name="Demo Workspace", owner=user, slug=DEMO_WORKSPACE_SLUG)
        else:
            member_add(workspace=workspace, user=user, role=Member.Role.OWNER)
        self.stdout.write(f"Demo workspace {workspace.name!r}: sign in as {email} / {password}")
