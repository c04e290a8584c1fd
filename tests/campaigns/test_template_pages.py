"""The templates section: list, create and edit with checks at save, preview, delete, test sends."""

import pytest

from campaigns.models import Template
from common.smtp_sink import SmtpSink
from tests.campaigns.helpers import relay_for
from tests.conftest import client_for
from tests.factories import SenderFactory, SubscriberFactory, TemplateFactory
from tests.mail import outbox

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "Welcome",
    "subject": "Hi {{ subscriber.first_name | default('there') }}",
    "preheader": "A note for {{ subscriber.email }}",
    "html": "<html><head><style>p { color: #333 }</style></head><body><p>Hello {{ subscriber.name }}</p></body></html>",
    "text": "",
}


@pytest.fixture
def template(team):
    return TemplateFactory(workspace=team.a, name="Newsletter", subject="News for {{ subscriber.first_name }}")


@pytest.fixture
def as_member(client):
    def login(member):
        client.logout()
        return client_for(client, member)

    return login


def test_the_list_shows_the_workspaces_templates_only(as_member, team, template, django_assert_max_num_queries):
    TemplateFactory(workspace=team.b, name="Globex secret")
    client = as_member(team.alice)
    with django_assert_max_num_queries(12):
        response = client.get("/campaigns/templates/")
    assert response.status_code == 200
    assert b"Newsletter" in response.content and b"Globex secret" not in response.content


def test_an_empty_list_invites_to_create(as_member, team):
    page = as_member(team.alice).get("/campaigns/templates/").content.decode()
    assert "No templates yet" in page and "Create your first template" in page
    assert "Create your first template" not in as_member(team.victor).get("/campaigns/templates/").content.decode()


def test_the_list_is_paginated(as_member, team):
    for n in range(30):
        TemplateFactory(workspace=team.a, name=f"T{n:02d}")
    page = as_member(team.alice).get("/campaigns/templates/?page=2").content.decode()
    assert "Page 2 of 2" in page and "T29" in page and "T00" not in page


def test_creating_a_template(as_member, team):
    response = as_member(team.bob).post("/campaigns/templates/new/", GOOD)
    template = Template.objects.get(workspace=team.a, name="Welcome")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/templates/{template.pk}/"
    assert template.subject == GOOD["subject"]
    assert template.created_by == team.bob.user


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("html", "<p>{{ subscriber.name }</p>", "HTML body, line 1"),
        ("html", "<p>{{ subscriber.compnay }}</p>", "Unknown field &#x27;subscriber.compnay&#x27;"),
        ("html", "{{ ''.__class__.__mro__ }}", "underscore"),
        ("html", "{{ cycler.__init__.__globals__ }}", "underscore"),
        ("text", "{{ range(10**9) }}", "Text body"),
        ("subject", "Hi {{ self }}", "Subject"),
        ("preheader", "{% include 'x.html' %}", "cannot include"),
    ],
)
def test_bad_content_is_refused_at_save_with_the_message_next_to_its_field(as_member, team, field, value, message):
    response = as_member(team.alice).post("/campaigns/templates/new/", {**GOOD, field: value})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in response.content.decode()
    assert not Template.objects.filter(workspace=team.a).exists()


def test_a_custom_attribute_the_workspace_uses_is_accepted(as_member, team):
    SubscriberFactory(workspace=team.a, attributes={"company": "Acme"})
    response = as_member(team.alice).post(
        "/campaigns/templates/new/", {**GOOD, "html": "<p>{{ subscriber.company }}</p>"}
    )
    assert response.status_code == 302


def test_a_duplicate_name_is_refused_on_the_name_field(as_member, team, template):
    response = as_member(team.alice).post("/campaigns/templates/new/", {**GOOD, "name": "Newsletter"})
    assert response.status_code == 400
    assert "already has this name" in str(response.context["form"].errors["name"])


def test_editing_a_template(as_member, team, template):
    client = as_member(team.bob)
    assert client.get(f"/campaigns/templates/{template.pk}/").status_code == 200
    response = client.post(f"/campaigns/templates/{template.pk}/", {**GOOD, "name": "Renamed"})
    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.subject) == ("Renamed", GOOD["subject"])


def test_a_bad_edit_leaves_the_template_as_it_was(as_member, team, template):
    before = Template.objects.filter(pk=template.pk).values().get()
    response = as_member(team.alice).post(f"/campaigns/templates/{template.pk}/", {**GOOD, "html": "{% if x %}"})
    assert response.status_code == 400
    assert Template.objects.filter(pk=template.pk).values().get() == before


def test_a_viewer_sees_a_template_but_cannot_change_create_or_delete(as_member, team, template):
    client = as_member(team.victor)
    page = client.get(f"/campaigns/templates/{template.pk}/")
    assert page.status_code == 200 and b"disabled" in page.content
    assert client.post(f"/campaigns/templates/{template.pk}/", {**GOOD, "name": "Hacked"}).status_code == 403
    assert client.get("/campaigns/templates/new/").status_code == 403
    assert client.post("/campaigns/templates/new/", GOOD).status_code == 403
    assert client.post(f"/campaigns/templates/{template.pk}/delete/").status_code == 403
    assert client.post(f"/campaigns/templates/{template.pk}/test/", {"to": "v@x.test"}).status_code == 403
    template.refresh_from_db()
    assert template.name == "Newsletter"


def test_charlie_gets_404_for_every_template_page(as_member, team, template):
    client = as_member(team.charlie)
    for method, path in [
        ("get", f"/campaigns/templates/{template.pk}/"),
        ("post", f"/campaigns/templates/{template.pk}/"),
        ("get", f"/campaigns/templates/{template.pk}/delete/"),
        ("post", f"/campaigns/templates/{template.pk}/delete/"),
        ("post", f"/campaigns/templates/{template.pk}/test/"),
    ]:
        assert getattr(client, method)(path, {**GOOD, "to": "c@globex.test"}).status_code == 404, path
    assert Template.objects.filter(pk=template.pk, name="Newsletter").exists()


def test_deleting_asks_first_then_deletes(as_member, team, template):
    client = as_member(team.bob)
    confirm = client.get(f"/campaigns/templates/{template.pk}/delete/")
    assert confirm.status_code == 200 and b"cannot be undone" in confirm.content
    assert Template.objects.filter(pk=template.pk).exists()
    assert client.post(f"/campaigns/templates/{template.pk}/delete/").status_code == 302
    assert not Template.objects.filter(pk=template.pk).exists()


# --- Preview -----------------------------------------------------------------------------------


def preview(client, **fields):
    return client.post("/campaigns/templates/preview.json", {**GOOD, **fields}).json()


def test_the_preview_renders_unsaved_content_for_a_chosen_subscriber(as_member, team):
    SubscriberFactory(workspace=team.a, email="grace@acme.test", name="Grace Hopper")
    data = preview(as_member(team.victor), subscriber="grace@acme.test")  # a read: viewers may preview
    assert data["ok"] is True
    assert data["subject"] == "Hi Grace"
    assert data["preheader"] == "A note for grace@acme.test"
    assert '<p style="color: #333;">Hello Grace Hopper</p>' in data["html"]
    assert "Hello Grace Hopper" in data["text"]
    assert data["sample"] is False


def test_the_preview_uses_a_sample_subscriber_by_default(as_member, team):
    data = preview(as_member(team.alice))
    assert data["ok"] and data["sample"] and data["subject"] == "Hi Ada"


def test_the_preview_reports_problems_per_field(as_member, team):
    data = preview(as_member(team.alice), subject="{{ nope }}", html="<p>{{ subscriber.name }</p>")
    assert data["ok"] is False
    assert set(data["errors"]) == {"subject", "html"}
    assert "line 1" in data["errors"]["html"]


def test_the_preview_cannot_render_another_workspaces_subscriber(as_member, team):
    SubscriberFactory(workspace=team.a, email="grace@acme.test", name="Grace Hopper")
    data = preview(as_member(team.charlie), subscriber="grace@acme.test")
    assert data["ok"] is False
    assert "No subscriber grace@acme.test" in data["errors"]["subscriber"]


def test_the_preview_requires_a_member(client, team):
    response = client.post("/campaigns/templates/preview.json", GOOD)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_editor_page_carries_the_preview_script(as_member, team, template):
    page = as_member(team.alice).get(f"/campaigns/templates/{template.pk}/").content.decode()
    assert "js/template_editor.js" in page and 'data-preview-url="/campaigns/templates/preview.json"' in page
    assert 'sandbox=""' in page  # the preview frame runs no script from the email


# --- Test sends --------------------------------------------------------------------------------


def test_a_test_email_goes_through_the_platform_mail_without_a_relay(as_member, team, template, smtp_sink):
    SubscriberFactory(workspace=team.a, email="grace@acme.test", name="Grace Hopper")
    response = as_member(team.bob).post(
        f"/campaigns/templates/{template.pk}/test/", {"to": "bob@acme.test", "subscriber": "grace@acme.test"}
    )
    assert response.status_code == 302
    mails = outbox()
    assert len(mails) == 1
    assert mails[0].to == ["bob@acme.test"]
    assert mails[0].subject == "[Test] News for Grace"
    assert "Grace Hopper" in mails[0].body


@pytest.mark.slow
def test_a_test_email_goes_through_the_workspaces_relay(as_member, team, template, tmp_path, smtp_sink):
    SenderFactory(workspace=team.a, email="news@acme.test", name="Acme News")
    relay_sink = SmtpSink(tmp_path / "relay").start()
    try:
        relay_for(relay_sink, workspace=team.a, name="Acme relay")
        response = as_member(team.alice).post(f"/campaigns/templates/{template.pk}/test/", {"to": "alice@acme.test"})
        assert response.status_code == 302
        messages = relay_sink.store.messages()
    finally:
        relay_sink.stop()
    assert outbox() == []  # not through the platform's mail
    assert len(messages) == 1
    sent = messages[0]
    assert sent["Subject"] == "[Test] News for Ada"
    assert sent["From"] == "Acme News <news@acme.test>"
    assert "/u/preview/" in sent["List-Unsubscribe"]  # a test never carries a working unsubscribe link


def test_a_test_send_with_a_bad_address_is_refused(as_member, team, template, smtp_sink):
    response = as_member(team.alice).post(f"/campaigns/templates/{template.pk}/test/", {"to": "not an address"})
    assert response.status_code == 400
    assert outbox() == []


def test_test_sends_are_limited_per_hour(as_member, team, template, smtp_sink, settings):
    from campaigns import previews

    client = as_member(team.alice)
    for _ in range(previews.TEST_SENDS_PER_HOUR):
        assert client.post(f"/campaigns/templates/{template.pk}/test/", {"to": "alice@acme.test"}).status_code == 302
    response = client.post(f"/campaigns/templates/{template.pk}/test/", {"to": "alice@acme.test"})
    assert response.status_code == 400
    assert "try again later" in response.content.decode()
    assert len(outbox()) == previews.TEST_SENDS_PER_HOUR
