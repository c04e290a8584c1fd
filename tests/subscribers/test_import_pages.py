"""The import pages: upload, mapping, progress, cancel and the error report; bad files; tenancy and roles."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from subscribers.models import Import, Subscriber
from tests.conftest import client_for
from tests.factories import MailingListFactory
from tests.subscribers.imports_helpers import csv_bytes, upload

pytestmark = pytest.mark.django_db

GOOD = csv_bytes([["ann@example.com", "Ann", "Oslo"], ["bob@example.com", "Bob", "Rome"]])


def post_file(client, data: bytes, name="people.csv", **fields):
    return client.post(
        reverse("subscribers:import_new"), {"file": SimpleUploadedFile(name, data, "text/csv"), "mode": "add", **fields}
    )


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "imports"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def test_the_list_page_has_an_empty_state_and_names_the_url_others_link_to(alice_client):
    response = alice_client.get(reverse("subscribers:imports"))
    assert response.status_code == 200
    assert b"No imports yet" in response.content
    assert reverse("subscribers:imports") == "/subscribers/imports/"


def test_uploading_shows_a_preview_and_mapping_then_queues_the_import(alice_client, team):
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    response = post_file(alice_client, GOOD, mailing_list=newsletter.pk)
    imp = Import.objects.get()
    assert response.status_code == 302 and response.url == reverse("subscribers:import_mapping", args=[imp.pk])
    page = alice_client.get(response.url)
    assert page.status_code == 200
    assert b"ann@example.com" in page.content and b"Oslo" in page.content
    response = alice_client.post(
        response.url,
        {"has_header": "on", "column_0": "email", "column_1": "name", "column_2": "attribute", "key_2": "town"},
    )
    assert response.status_code == 302 and response.url == reverse("subscribers:import_detail", args=[imp.pk])
    imp.refresh_from_db()
    assert imp.status == Import.Status.QUEUED
    assert imp.mapping == {"email": 0, "name": 1, "attributes": [["town", 2]]}
    assert (imp.mailing_list, imp.created_by) == (newsletter, team.alice.user)
    detail = alice_client.get(response.url)
    assert b'role="progressbar"' in detail.content and b"js/import_progress.js" in detail.content
    progress = alice_client.get(reverse("subscribers:import_progress", args=[imp.pk])).json()
    assert progress["status"] == "queued" and progress["percent"] == 0 and progress["finished"] is False


def test_a_mapping_without_an_email_column_is_refused(alice_client, team):
    imp = upload(team.a, GOOD)
    response = alice_client.post(
        reverse("subscribers:import_mapping", args=[imp.pk]),
        {"has_header": "on", "column_0": "ignore", "column_1": "name", "column_2": "ignore"},
    )
    assert response.status_code == 400
    assert b"Choose the column that holds the email addresses." in response.content
    imp.refresh_from_db()
    assert imp.status == Import.Status.UPLOADED


BAD_FILES = {
    "empty": (b"", "The file is empty"),
    "no email column": (
        csv_bytes([["Ann", "Oslo"], ["Bob", "Rome"]], header=("name", "city")),
        "No column of this file holds email addresses",
    ),
    "binary renamed .csv": (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 64, "it contains binary data"),
    "mixed encodings": (
        b"email,name\n"
        + "".join(f"p{i}@example.com,Zoë {i}\n" for i in range(4000)).encode()
        + "x@example.com,Zoë\n".encode("latin-1"),
        "The file mixes character encodings",
    ),
    "a 10 MB single line": (b"email," + b"x" * (10 * 1024 * 1024), "Line 1 is longer than 1 MB"),
    "header only": (b"email,name\n", "header row but no rows"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_gets_a_clear_message_and_leaves_nothing_behind(alice_client, team, case):
    data, message = BAD_FILES[case]
    before = stored_files()
    response = post_file(alice_client, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Import.objects.exists() and not Subscriber.objects.exists()
    assert stored_files() == before


def test_a_file_over_the_size_limit_is_refused_without_being_stored(alice_client, team, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    data = b"email\n" + b"someone@example.com\n" * 60_000  # 1.2 MB
    before = stored_files()
    response = post_file(alice_client, data)
    assert response.status_code == 413
    assert "larger than the 1 MB limit" in response.content.decode()
    assert not Import.objects.exists() and stored_files() == before


def test_formulas_are_shown_as_text_in_the_preview(alice_client, team):
    imp = upload(team.a, csv_bytes([["ann@example.com", "=1+1", "<script>alert(1)</script>"]]))
    page = alice_client.get(reverse("subscribers:import_mapping", args=[imp.pk])).content.decode()
    assert "=1+1" in page and "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_cancelling_asks_first_then_stops_the_import(alice_client, team):
    imp = upload(team.a, GOOD)
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    confirm = alice_client.get(reverse("subscribers:import_cancel", args=[imp.pk]))
    assert confirm.status_code == 200 and b"Cancel the import" in confirm.content
    imp.refresh_from_db()
    assert imp.status == Import.Status.QUEUED
    response = alice_client.post(reverse("subscribers:import_cancel", args=[imp.pk]))
    assert response.status_code == 302
    imp.refresh_from_db()
    assert imp.status == Import.Status.CANCELLED


def test_discarding_an_upload_removes_it_and_its_file(alice_client, team):
    before = stored_files()
    imp = upload(team.a, GOOD)
    assert len(stored_files()) == len(before) + 1
    response = alice_client.post(reverse("subscribers:import_mapping", args=[imp.pk]), {"discard": "1"})
    assert response.status_code == 302
    assert not Import.objects.exists() and stored_files() == before


def test_the_error_report_downloads_with_formulas_neutralised(alice_client, team):
    imp = upload(team.a, GOOD)
    report = Path(settings.MEDIA_ROOT) / "imports" / "test-errors.csv"
    report.write_bytes(b"row,reason,email\r\n2,bad,'=cmd\r\n")
    Import.objects.filter(pk=imp.pk).update(
        status=Import.Status.COMPLETED, error_report="imports/test-errors.csv", rejected=1
    )
    response = alice_client.get(reverse("subscribers:import_errors", args=[imp.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content) == report.read_bytes()
    report.unlink()


def test_the_list_page_pages_through_imports_with_a_constant_number_of_queries(
    alice_client, team, django_assert_max_num_queries
):
    for _ in range(30):
        upload(team.a, GOOD)
    with django_assert_max_num_queries(10):
        response = alice_client.get(reverse("subscribers:imports"))
    assert response.status_code == 200 and b"Page 1 of 2" in response.content


def import_urls(imp):
    return {
        "detail": reverse("subscribers:import_detail", args=[imp.pk]),
        "mapping": reverse("subscribers:import_mapping", args=[imp.pk]),
        "progress": reverse("subscribers:import_progress", args=[imp.pk]),
        "cancel": reverse("subscribers:import_cancel", args=[imp.pk]),
        "errors": reverse("subscribers:import_errors", args=[imp.pk]),
    }


@pytest.mark.parametrize("page", ["detail", "mapping", "progress", "cancel", "errors"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_workspace_reaches_no_import(client, team, page, method):
    imp = upload(team.a, GOOD)
    charlie = client_for(client, team.charlie)
    assert getattr(charlie, method)(import_urls(imp)[page]).status_code in (404, 405)
    if method == "get":
        assert charlie.get(import_urls(imp)[page]).status_code == 404
    assert Import.objects.get().status == Import.Status.UPLOADED


def test_another_workspace_does_not_see_imports_in_its_list_and_guessed_ids_are_404(client, team):
    imp = upload(team.a, GOOD, name="secret-list.csv")
    charlie = client_for(client, team.charlie)
    assert b"secret-list.csv" not in charlie.get(reverse("subscribers:imports")).content
    assert charlie.get(reverse("subscribers:import_detail", args=[imp.pk + 1000])).status_code == 404


def test_a_viewer_can_follow_imports_but_not_start_map_or_cancel_them(client, team):
    imp = upload(team.a, GOOD)
    victor = client_for(client, team.victor)
    assert victor.get(reverse("subscribers:imports")).status_code == 200
    assert b"can view imports but not start them" in victor.get(reverse("subscribers:import_new")).content
    assert post_file(victor, GOOD).status_code == 403
    assert victor.post(import_urls(imp)["mapping"], {"column_0": "email"}).status_code == 403
    assert victor.get(import_urls(imp)["cancel"]).status_code == 403
    assert victor.post(import_urls(imp)["cancel"]).status_code == 403
    assert victor.get(import_urls(imp)["progress"]).status_code == 200
    assert Import.objects.count() == 1 and Import.objects.get().status == Import.Status.UPLOADED


def test_signed_out_visitors_are_sent_to_sign_in(client, team):
    imp = upload(team.a, GOOD)
    for url in [reverse("subscribers:imports"), reverse("subscribers:import_new"), *import_urls(imp).values()]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url


def test_a_request_announcing_more_than_the_limit_is_refused_before_it_is_read(alice_client, team, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    before = stored_files()
    response = post_file(alice_client, b"email\n" + b"someone@example.com\n" * 150_000)  # 3 MB
    assert response.status_code == 413
    assert "larger than the 1 MB limit" in response.content.decode()
    assert not Import.objects.exists() and stored_files() == before
