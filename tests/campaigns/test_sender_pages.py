"""Senders confirmed by email, and sending domains with their DNS records and DKIM keys."""

import re

import dkim
import pytest
from django.core import signing

from campaigns import senders
from campaigns.lib.message import DkimSigner
from campaigns.models import Sender, SendingDomain
from tests.conftest import client_for
from tests.factories import CampaignFactory, RelayFactory, SenderFactory
from tests.mail import outbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_member(client):
    def login(member):
        client.logout()
        return client_for(client, member)

    return login


def confirmation_link(mail) -> str:
    return re.search(r"http://\S+/campaigns/senders/confirm/\S+/", mail.body).group(0)


# --- Senders -----------------------------------------------------------------------------------


def test_adding_a_sender_mails_a_confirmation_link_that_verifies_it(as_member, team, smtp_sink, client):
    response = as_member(team.bob).post("/campaigns/senders/", {"email": "News@Acme.test", "name": "Acme News"})
    assert response.status_code == 302
    sender = Sender.objects.get(workspace=team.a)
    assert (sender.email, sender.name, sender.is_verified) == ("news@acme.test", "Acme News", False)
    assert sender.verification_sent_at is not None
    [mail] = outbox()
    assert mail.to == ["news@acme.test"]
    path = confirmation_link(mail).split("testserver", 1)[-1].split("localhost:8000", 1)[-1]

    client.logout()  # the mailbox's owner need not have an account
    page = client.get(path)
    assert page.status_code == 200 and b"Confirm news@acme.test" in page.content
    sender.refresh_from_db()
    assert not sender.is_verified  # a link scanner's GET confirms nothing
    assert client.post(path).status_code == 200
    sender.refresh_from_db()
    assert sender.is_verified
    assert client.post(path).status_code == 200  # twice is harmless


def test_a_tampered_or_expired_link_is_refused(client, team, settings):
    sender = SenderFactory(workspace=team.a, email="news@acme.test", verified_at=None)
    token = senders.sender_confirm_token(sender=sender)
    for bad in (token[:-3] + "abc", signing.dumps([sender.pk, "other@acme.test"], salt=senders.CONFIRM_SALT)):
        response = client.post(f"/campaigns/senders/confirm/{bad}/")
        assert response.status_code == 400
    sender.refresh_from_db()
    assert not sender.is_verified


def test_an_expired_link_says_so(client, team, monkeypatch):
    from datetime import timedelta

    sender = SenderFactory(workspace=team.a, email="news@acme.test", verified_at=None)
    token = senders.sender_confirm_token(sender=sender)
    monkeypatch.setattr(senders, "CONFIRM_MAX_AGE", timedelta(seconds=-1))
    response = client.post(f"/campaigns/senders/confirm/{token}/")
    assert response.status_code == 400 and b"expired" in response.content
    sender.refresh_from_db()
    assert not sender.is_verified


def test_a_bad_or_duplicate_address_is_refused(as_member, team, smtp_sink):
    SenderFactory(workspace=team.a, email="news@acme.test")
    client = as_member(team.alice)
    for email, message in (("not-an-address", "valid email"), ("news@acme.test", "already one of")):
        response = client.post("/campaigns/senders/", {"email": email})
        assert response.status_code == 400
        assert message in response.content.decode()
    assert Sender.objects.filter(workspace=team.a).count() == 1
    assert outbox() == []


def test_resending_the_link_waits_a_minute(as_member, team, smtp_sink):
    client = as_member(team.alice)
    client.post("/campaigns/senders/", {"email": "news@acme.test"})
    sender = Sender.objects.get(workspace=team.a)
    response = client.post(f"/campaigns/senders/{sender.pk}/resend/", follow=True)
    assert b"less than a minute ago" in response.content
    assert len(outbox()) == 1
    Sender.objects.filter(pk=sender.pk).update(verification_sent_at=sender.verification_sent_at - senders.RESEND_AFTER)
    client.post(f"/campaigns/senders/{sender.pk}/resend/")
    assert len(outbox()) == 2


def test_deleting_a_sender_asks_first_and_refuses_one_in_use(as_member, team):
    free = SenderFactory(workspace=team.a, email="free@acme.test")
    used = SenderFactory(workspace=team.a, email="used@acme.test")
    CampaignFactory(workspace=team.a, sender=used)
    client = as_member(team.alice)
    assert b"Delete sender" in client.get(f"/campaigns/senders/{free.pk}/delete/").content
    assert client.post(f"/campaigns/senders/{free.pk}/delete/").status_code == 302
    assert not Sender.objects.filter(pk=free.pk).exists()
    assert b"cannot be deleted" in client.get(f"/campaigns/senders/{used.pk}/delete/").content
    response = client.post(f"/campaigns/senders/{used.pk}/delete/", follow=True)
    assert b"Campaigns use this sender" in response.content
    assert Sender.objects.filter(pk=used.pk).exists()


def test_a_viewer_sees_senders_but_cannot_change_them(as_member, team, smtp_sink):
    sender = SenderFactory(workspace=team.a, email="news@acme.test", verified_at=None)
    client = as_member(team.victor)
    page = client.get("/campaigns/senders/")
    assert page.status_code == 200 and b"news@acme.test" in page.content and b"Add a sender" not in page.content
    assert client.post("/campaigns/senders/", {"email": "x@acme.test"}).status_code == 403
    assert client.post(f"/campaigns/senders/{sender.pk}/resend/").status_code == 403
    assert client.post(f"/campaigns/senders/{sender.pk}/delete/").status_code == 403
    assert Sender.objects.filter(workspace=team.a).count() == 1
    assert outbox() == []


def test_charlie_cannot_see_or_touch_another_workspaces_senders(as_member, team):
    sender = SenderFactory(workspace=team.a, email="news@acme.test", verified_at=None)
    client = as_member(team.charlie)
    assert b"news@acme.test" not in client.get("/campaigns/senders/").content
    assert client.post(f"/campaigns/senders/{sender.pk}/resend/").status_code == 404
    assert client.get(f"/campaigns/senders/{sender.pk}/delete/").status_code == 404
    assert client.post(f"/campaigns/senders/{sender.pk}/delete/").status_code == 404
    assert Sender.objects.filter(pk=sender.pk).exists()


# --- Sending domains ---------------------------------------------------------------------------


@pytest.fixture
def domain(team):
    return senders.domain_create(workspace=team.a, domain="acme.test")


def test_adding_a_domain_generates_an_encrypted_dkim_key_and_shows_the_records(as_member, team):
    RelayFactory(workspace=team.a, host="smtp.relay.test")
    RelayFactory(workspace=team.a, host="192.0.2.25")
    client = as_member(team.bob)
    response = client.post("/campaigns/domains/", {"domain": "Mail.Acme.TEST."})
    domain = SendingDomain.objects.get(workspace=team.a)
    assert response.status_code == 302 and response["Location"] == f"/campaigns/domains/{domain.pk}/"
    assert domain.domain == "mail.acme.test"
    assert domain.dkim_private_key.startswith("-----BEGIN PRIVATE KEY-----")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT dkim_private_key FROM campaigns_sendingdomain WHERE id = %s", [domain.pk])
        stored = cursor.fetchone()[0]
    assert "PRIVATE KEY" not in stored  # encrypted at rest

    page = client.get(f"/campaigns/domains/{domain.pk}/").content.decode()
    assert "v=spf1 ip4:192.0.2.25 a:smtp.relay.test ~all" in page
    assert "herald._domainkey.mail.acme.test" in page
    assert f"v=DKIM1; k=rsa; p={domain.dkim_public_key}" in page
    assert "_dmarc.mail.acme.test" in page and "v=DMARC1; p=none" in page


def test_the_published_dkim_record_verifies_signed_mail(domain):
    records = {record.purpose: record for record in senders.domain_dns_records(sending_domain=domain)}
    signer = DkimSigner(domain="acme.test", selector=domain.dkim_selector, private_key_pem=domain.dkim_private_key)
    message = signer.sign(b"From: a@acme.test\r\nTo: b@example.org\r\nSubject: x\r\n\r\nHello\r\n")
    assert dkim.verify(message, dnsfunc=lambda name, timeout=5: records["DKIM"].value.encode())


@pytest.mark.parametrize("bad", ["not a domain", "http://acme.test", "a@acme.test", "localhost", "-x.test"])
def test_a_bad_domain_is_refused(as_member, team, bad):
    response = as_member(team.alice).post("/campaigns/domains/", {"domain": bad})
    assert response.status_code == 400
    assert not SendingDomain.objects.exists()


def test_checking_dns_verifies_the_domain_when_its_dkim_record_matches(as_member, team, domain, monkeypatch):
    records = {record.name: record.value for record in senders.domain_dns_records(sending_domain=domain)}
    published = {}
    monkeypatch.setattr(senders, "txt_records", lambda name: published.get(name, []))  # DNS is remote: mocked
    client = as_member(team.alice)

    response = client.post(f"/campaigns/domains/{domain.pk}/check/", follow=True)
    assert b"Not found in DNS yet: SPF, DKIM, DMARC" in response.content
    domain.refresh_from_db()
    assert not domain.is_verified

    dkim_name = "herald._domainkey.acme.test"
    value = records[dkim_name]
    published[dkim_name] = [value[:200] + " " + value[200:]]  # long keys come split in DNS
    published["acme.test"] = ["v=spf1 include:_spf.example.net ~all", "google-site-verification=x"]
    client.post(f"/campaigns/domains/{domain.pk}/check/")
    domain.refresh_from_db()
    assert domain.is_verified
    assert domain.last_check_result["SPF"]["ok"] and not domain.last_check_result["DMARC"]["ok"]


def test_replacing_the_key_asks_first_and_unverifies(as_member, team, domain):
    SendingDomain.objects.filter(pk=domain.pk).update(verified_at=domain.created_at)
    old_key = domain.dkim_public_key
    client = as_member(team.alice)
    assert b"cannot be recovered" in client.get(f"/campaigns/domains/{domain.pk}/dkim/").content
    client.post(f"/campaigns/domains/{domain.pk}/dkim/")
    domain.refresh_from_db()
    assert domain.dkim_public_key != old_key and not domain.is_verified


def test_removing_a_domain_asks_first(as_member, team, domain):
    client = as_member(team.alice)
    assert b"cannot be undone" in client.get(f"/campaigns/domains/{domain.pk}/delete/").content
    assert SendingDomain.objects.filter(pk=domain.pk).exists()
    client.post(f"/campaigns/domains/{domain.pk}/delete/")
    assert not SendingDomain.objects.filter(pk=domain.pk).exists()


def test_a_duplicate_domain_is_refused(as_member, team, domain):
    response = as_member(team.alice).post("/campaigns/domains/", {"domain": "acme.test"})
    assert response.status_code == 400 and b"already set up" in response.content


def test_a_viewer_sees_domains_but_cannot_change_them(as_member, team, domain, monkeypatch):
    monkeypatch.setattr(senders, "txt_records", lambda name: [])
    client = as_member(team.victor)
    assert client.get(f"/campaigns/domains/{domain.pk}/").status_code == 200
    page = client.get("/campaigns/domains/").content
    assert b"acme.test" in page and b"Add a domain" not in page and b"Bounce and complaint webhook" not in page
    assert client.post("/campaigns/domains/", {"domain": "other.test"}).status_code == 403
    for action in ("check", "dkim", "delete"):
        assert client.post(f"/campaigns/domains/{domain.pk}/{action}/").status_code == 403
    key = domain.dkim_public_key
    domain.refresh_from_db()
    assert domain.dkim_public_key == key and SendingDomain.objects.count() == 1


def test_charlie_gets_404_for_another_workspaces_domain(as_member, team, domain):
    client = as_member(team.charlie)
    assert b"acme.test" not in client.get("/campaigns/domains/").content
    assert client.get(f"/campaigns/domains/{domain.pk}/").status_code == 404
    for action in ("check", "dkim", "delete"):
        assert client.post(f"/campaigns/domains/{domain.pk}/{action}/").status_code == 404
    assert SendingDomain.objects.filter(pk=domain.pk).exists()


def test_owners_see_the_workspaces_bounce_webhook(as_member, team):
    from campaigns.bounces import workspace_webhook_secret

    page = as_member(team.alice).get("/campaigns/domains/").content.decode()
    assert f"/webhooks/bounces/{team.a.pk}/" in page
    assert workspace_webhook_secret(team.a.pk) in page
    assert workspace_webhook_secret(team.b.pk) not in page
