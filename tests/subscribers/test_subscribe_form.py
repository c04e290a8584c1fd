"""The public subscribe form and double opt-in: honeypot, rate limit, the email, the link."""

import re
import time
from unittest import mock

import pytest
from django.core import signing

from common.local_services import free_port
from subscribers.models import AuditEntry, ListMembership, Subscriber, Suppression
from subscribers.services import erasure_digest
from subscribers.tokens import make_confirm_token
from tests.factories import ListMembershipFactory, MailingListFactory, SubscriberFactory
from tests.mail import outbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def single(team):
    return MailingListFactory(workspace=team.a, name="News", opt_in="single", consent_text="Send me the news.")


@pytest.fixture
def double(team):
    return MailingListFactory(workspace=team.a, name="Digest", opt_in="double", consent_text="Send me the digest.")


def form(mailing_list):
    return f"/subscribe/{mailing_list.public_token}/"


def submit(client, mailing_list, ip="203.0.113.7", **fields):
    data = {"email": "reader@example.net", "name": "Reader", "consent": "on", **fields}
    return client.post(form(mailing_list), data, REMOTE_ADDR=ip)


def confirm_path(body):
    return re.search(r"http://[^/\s]+(/confirm/[^/\s]+/)", body).group(1)


def test_the_form_shows_the_list_and_its_consent_text_and_can_be_framed(client, single):
    response = client.get(form(single))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Subscribe to News" in page and "Send me the news." in page
    assert 'name="website"' in page  # the honeypot
    assert "X-Frame-Options" not in response.headers


def test_an_unknown_form_token_is_404(client, single):
    assert client.get("/subscribe/not-a-token/").status_code == 404


def test_single_opt_in_subscribes_at_once_and_records_consent(client, single):
    response = submit(client, single)
    assert response.status_code == 200
    assert "You are subscribed" in response.content.decode()
    subscriber = Subscriber.objects.get(email="reader@example.net")
    assert subscriber.source == "form" and subscriber.name == "Reader"
    assert ListMembership.objects.get(subscriber=subscriber, mailing_list=single).status == "confirmed"
    assert subscriber.consent_at is not None
    assert subscriber.consent_ip == "203.0.113.7"
    assert subscriber.consent_text == "Send me the news."
    assert "single opt-in" in subscriber.consent_method


def test_the_form_is_csrf_exempt_so_other_sites_can_embed_it(single):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert submit(strict, single).status_code == 200


def test_double_opt_in_sends_a_link_that_confirms(client, double, smtp_sink):
    response = submit(client, double, email="Reader@Example.NET")
    assert "Check your inbox" in response.content.decode()
    subscriber = Subscriber.objects.get(email="reader@example.net")
    membership = ListMembership.objects.get(subscriber=subscriber, mailing_list=double)
    assert membership.status == "unconfirmed" and subscriber.consent_at is None
    [mail] = outbox()
    assert mail.to == ["reader@example.net"]
    assert mail.subject == "Confirm your subscription to Digest"
    assert "Send me the digest." in mail.body
    path = confirm_path(mail.body)
    page = client.get(path)
    assert page.status_code == 200 and "Yes, subscribe me" in page.content.decode()
    membership.refresh_from_db()
    assert membership.status == "unconfirmed"  # opening the link (a mail scanner might) confirms nothing
    done = client.post(path, REMOTE_ADDR="198.51.100.4")
    assert done.status_code == 200 and "Subscription confirmed" in done.content.decode()
    membership.refresh_from_db()
    subscriber.refresh_from_db()
    assert membership.status == "confirmed" and membership.confirmed_at is not None
    assert subscriber.consent_ip == "198.51.100.4" and subscriber.consent_text == "Send me the digest."
    assert subscriber.consent_method.startswith("double opt-in")
    assert AuditEntry.objects.filter(subscriber_id=subscriber.pk, action="confirm").count() == 1
    # Confirming twice is harmless.
    assert client.post(path).status_code == 200
    assert AuditEntry.objects.filter(subscriber_id=subscriber.pk, action="confirm").count() == 1


def test_a_forged_or_altered_confirmation_link_is_refused(client, double):
    subscriber = SubscriberFactory(workspace=double.workspace)
    ListMembershipFactory(mailing_list=double, subscriber=subscriber, status="unconfirmed")
    token = make_confirm_token(subscriber_id=subscriber.pk, list_id=double.pk)
    forged = signing.dumps([subscriber.pk, double.pk], salt="some.other.salt", compress=True)
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), forged, "garbage"):
        response = client.post(f"/confirm/{bad}/")
        assert response.status_code == 400
        assert "not valid" in response.content.decode()
    assert ListMembership.objects.get(subscriber=subscriber).status == "unconfirmed"


def test_an_expired_confirmation_link_says_so(client, double):
    subscriber = SubscriberFactory(workspace=double.workspace)
    ListMembershipFactory(mailing_list=double, subscriber=subscriber, status="unconfirmed")
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 8 * 24 * 3600):
        token = make_confirm_token(subscriber_id=subscriber.pk, list_id=double.pk)
    response = client.post(f"/confirm/{token}/")
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert ListMembership.objects.get(subscriber=subscriber).status == "unconfirmed"


def test_the_honeypot_pretends_and_does_nothing(client, double, smtp_sink):
    response = submit(client, double, website="http://spam.example")
    assert response.status_code == 200
    assert not Subscriber.objects.exists()
    assert outbox() == []


def test_posts_from_one_address_are_rate_limited(client, single, settings):
    settings.SUBSCRIBE_RATE_LIMIT = "3/h"
    codes = [submit(client, single, email=f"r{n}@example.net").status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]
    assert "Too many attempts" in submit(client, single, email="r9@example.net").content.decode()
    assert Subscriber.objects.count() == 3
    # Another client is not affected.
    assert submit(client, single, email="other@example.net", ip="192.0.2.55").status_code == 200


def test_the_rate_limit_fails_open_while_redis_is_down(client, single, settings):
    settings.SUBSCRIBE_RATE_LIMIT = "1/h"
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"},
    }
    codes = [submit(client, single, email=f"r{n}@example.net").status_code for n in range(3)]
    assert codes == [200, 200, 200]


def test_bad_input_gets_clear_messages(client, single):
    response = submit(client, single, email="not an address")
    assert response.status_code == 400
    assert "not a valid email address" in response.content.decode()
    response = submit(client, single, consent="")
    assert response.status_code == 400 and "Tick the box" in response.content.decode()
    assert not Subscriber.objects.exists()


def test_suppressed_or_erased_addresses_are_not_subscribed(client, single, team):
    Suppression.objects.create(workspace=team.a, kind="domain", value="blocked.example")
    Suppression.objects.create(
        workspace=team.a, kind="hash", value=erasure_digest(workspace_id=team.a.id, email="gone@example.net")
    )
    for email in ("someone@blocked.example", "gone@example.net"):
        response = submit(client, single, email=email)
        assert response.status_code == 409
        assert "could not subscribe" in response.content.decode()
    assert not Subscriber.objects.exists()


def test_someone_who_unsubscribed_must_confirm_by_email_to_come_back(client, single, smtp_sink):
    subscriber = SubscriberFactory(workspace=single.workspace, email="reader@example.net")
    Subscriber.objects.filter(pk=subscriber.pk).update(status="unsubscribed")
    response = submit(client, single)
    assert "Check your inbox" in response.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.status == "unsubscribed"
    [mail] = outbox()
    client.post(confirm_path(mail.body))
    subscriber.refresh_from_db()
    assert subscriber.status == "active"
    assert ListMembership.objects.get(subscriber=subscriber, mailing_list=single).status == "confirmed"


def test_an_existing_member_learns_nothing_from_the_form(client, double, smtp_sink):
    subscriber = SubscriberFactory(workspace=double.workspace, email="reader@example.net")
    ListMembershipFactory(mailing_list=double, subscriber=subscriber)
    response = submit(client, double)
    assert "Check your inbox" in response.content.decode()
    assert outbox() == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_the_mail_server_down_a_worker_sends_the_confirmation_later(client, team, smtp_sink, settings):
    from tests.workers import running_worker

    digest = MailingListFactory(workspace=team.a, name="Digest", opt_in="double")
    settings.EMAIL_PORT = free_port()  # nothing listens: this process cannot reach the mail server
    response = submit(client, digest)
    assert response.status_code == 200
    assert "will arrive shortly" in response.content.decode()
    assert outbox() == []
    # A worker (whose mail settings reach the sink) picks the queued task up.
    with running_worker(queues=("default",)):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not outbox():
            time.sleep(0.2)
    [mail] = outbox()
    assert mail.to == ["reader@example.net"] and "/confirm/" in mail.body
    client.post(confirm_path(mail.body))
    assert ListMembership.objects.get(mailing_list=digest).status == "confirmed"
