"""The demo workspace `make run` opens on: a login, an audience, a template and a campaign ready to send.

Everything a marketer needs to try Herald end to end on one machine: 250 subscribers on a
newsletter list (with city and plan attributes, and a segment over them), a verified sender, a
relay pointing at the platform's own SMTP server (the local SMTP sink under `make run`), a
template using merge tags, and a draft campaign to the list. Seeding again refreshes the login
and adds only what is missing, so it never duplicates or overwrites what someone changed.
This lives in operations because it spans every app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Member, User, Workspace
from accounts.services import member_add, workspace_create
from campaigns.models import Campaign, Relay, Sender, Template
from campaigns.services import campaign_create, template_create
from subscribers.models import ListMembership, MailingList, Segment, Subscriber
from subscribers.services import list_create, segment_create

DEMO_EMAIL = "demo@herald.test"
DEMO_PASSWORD = "herald-demo-password"
DEMO_WORKSPACE_SLUG = "demo"
DEMO_SUBSCRIBERS = 250
DEMO_SENDER = "news@demo.herald.test"
DEMO_LIST = "Newsletter"

_FIRST_NAMES = ["Ada", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luca"]
_LAST_NAMES = ["Berg", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Haddad", "Ito", "Jansen", "Kowalski"]
_CITIES = ["Berlin", "Lisbon", "Lyon", "Oslo", "Osaka", "Toronto", "Nairobi"]
_PLANS = ["free", "free", "pro", "team"]

DEMO_TEMPLATE_HTML = """<html><head><style>
  body { font-family: Georgia, serif; color: #1f2933; }
  h1 { font-size: 22px; color: #0b4f6c; }
  .button { background: #0b4f6c; color: #ffffff; padding: 10px 18px; text-decoration: none; }
  .footer { font-size: 12px; color: #7b8794; }
</style></head><body>
<h1>Hello {{ subscriber.first_name | default("there") }},</h1>
<p>Here is what happened in {{ subscriber.city | default("your city") }} this month, and what is
coming next on your {{ subscriber.plan | default("free") }} plan.</p>
<p><a class="button" href="https://example.com/news">Read the news</a></p>
<p><a href="https://example.com/events">Upcoming events</a></p>
<p class="footer"><a href="{{ view_in_browser_url }}">View in your browser</a> ·
<a href="{{ preferences_url }}">Choose what you receive</a> ·
<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</body></html>"""


@transaction.atomic
def demo_seed(*, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD) -> Workspace:
    """Create the demo workspace and its owner (or refresh the login), then fill in what is missing."""
    user = User.objects.filter(email=email).first() or User.objects.create_user(email=email, password=password)
    user.set_password(password)
    user.is_staff = user.is_superuser = True  # the demo login also opens the admin
    user.save()
    workspace = Workspace.objects.filter(slug=DEMO_WORKSPACE_SLUG).first()
    if workspace is None:
        workspace = workspace_create(name="Demo Workspace", owner=user, slug=DEMO_WORKSPACE_SLUG)
    else:
        member_add(workspace=workspace, user=user, role=Member.Role.OWNER)
    newsletter = _demo_audience(workspace, actor=user)
    _demo_campaign(workspace, actor=user, mailing_list=newsletter)
    return workspace


def _demo_audience(workspace: Workspace, *, actor) -> MailingList:
    newsletter = MailingList.objects.filter(workspace=workspace, name=DEMO_LIST).first()
    if newsletter is None:
        newsletter = list_create(
            workspace_id=workspace.pk,
            name=DEMO_LIST,
            actor=actor,
            description="The monthly newsletter: news, events and product updates.",
        )
    if not MailingList.objects.filter(workspace=workspace, name="Product updates").exists():
        list_create(
            workspace_id=workspace.pk,
            name="Product updates",
            actor=actor,
            opt_in=MailingList.OptIn.DOUBLE,
            description="Release notes, for those who confirm by email.",
        )
    now = timezone.now()
    people = []
    for n in range(DEMO_SUBSCRIBERS):
        first, last = _FIRST_NAMES[n % len(_FIRST_NAMES)], _LAST_NAMES[(n // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
        people.append(
            Subscriber(
                workspace=workspace,
                email=f"{first.lower()}.{last.lower()}.{n + 1}@example.com".replace("é", "e").replace("í", "i"),
                name=f"{first} {last}",
                attributes={"city": _CITIES[n % len(_CITIES)], "plan": _PLANS[n % len(_PLANS)]},
                source="demo",
                consent_at=now,
                consent_method="demo data",
            )
        )
    Subscriber.objects.bulk_create(people, ignore_conflicts=True)
    subscriber_ids = Subscriber.objects.filter(workspace=workspace, source="demo").values_list("pk", flat=True)
    ListMembership.objects.bulk_create(
        [
            ListMembership(workspace=workspace, mailing_list=newsletter, subscriber_id=pk, confirmed_at=now)
            for pk in subscriber_ids
        ],
        ignore_conflicts=True,
    )
    if not Segment.objects.filter(workspace=workspace, name="Pro and team plans").exists():
        segment_create(
            workspace_id=workspace.pk,
            name="Pro and team plans",
            rules={
                "match": "any",
                "conditions": [
                    {"field": "attribute:plan", "op": "eq", "value": "pro"},
                    {"field": "attribute:plan", "op": "eq", "value": "team"},
                ],
            },
            actor=actor,
        )
    return newsletter


def _demo_campaign(workspace: Workspace, *, actor, mailing_list: MailingList) -> None:
    sender = Sender.objects.filter(workspace=workspace, email=DEMO_SENDER).first()
    if sender is None:
        # The demo owns this address, so it starts verified; a real sender confirms by email.
        sender = Sender.objects.create(
            workspace=workspace, email=DEMO_SENDER, name="Herald Demo", verified_at=timezone.now()
        )
    if not Relay.objects.filter(workspace=workspace).exists():
        Relay.objects.create(
            workspace=workspace,
            name="Local SMTP server",
            host=settings.EMAIL_HOST,
            port=settings.EMAIL_PORT,
            tls_mode=Relay.TlsMode.NONE,
            priority=10,
        )
    template = Template.objects.filter(workspace=workspace, name="Monthly newsletter").first()
    if template is None:
        template = template_create(
            workspace=workspace,
            actor=actor,
            name="Monthly newsletter",
            subject='{{ subscriber.first_name | default("Hello") }}, your monthly news',
            preheader="News, events and what is next on your plan.",
            html=DEMO_TEMPLATE_HTML,
        )
    if not Campaign.objects.filter(workspace=workspace).exists():
        campaign_create(
            workspace=workspace,
            actor=actor,
            name="Monthly newsletter: first issue",
            template=template,
            sender_id=sender.pk,
            list_ids=[mailing_list.pk],
        )
