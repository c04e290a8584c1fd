"""The imports API: start from a multipart upload with a mapping and mode, follow, cancel; keys and tenancy."""

import json

import pytest

from accounts.services import api_key_create
from subscribers.models import Import
from tests.factories import MailingListFactory
from tests.subscribers.imports_helpers import csv_bytes, upload

pytestmark = pytest.mark.django_db

GOOD = csv_bytes(
    [["ann@example.com", "Ann", "Oslo"], ["bob@example.com", "Bob", "Rome"]], header=("Email", "Name", "Town")
)


def key(workspace, scope="write"):
    _, secret = api_key_create(workspace=workspace, name=f"{scope} key", scope=scope)
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def start(client, headers, data=GOOD, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = {"file": SimpleUploadedFile("people.csv", data, "text/csv"), **fields}
    return client.post("/api/imports", body, **headers)


def test_an_import_starts_from_an_upload_with_its_mapping_and_can_be_followed(client, team):
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    headers = key(team.a)
    mapping = {"email": "email", "name": "Name", "attributes": {"city": "Town"}}
    response = start(client, headers, mode="upsert", list_id=newsletter.pk, mapping=json.dumps(mapping))
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["mode"] == "upsert" and body["list_id"] == newsletter.pk
    assert body["mapping"] == {"email": 0, "name": 1, "attributes": [["city", 2]]}
    assert body["columns"] == ["Email", "Name", "Town"]
    followed = client.get(f"/api/imports/{body['id']}", **headers)
    assert followed.status_code == 200 and followed.json()["counts"]["total"] == 0
    assert [item["id"] for item in client.get("/api/imports", **headers).json()] == [body["id"]]


def test_without_a_mapping_the_columns_are_guessed(client, team):
    response = start(client, key(team.a))
    assert response.status_code == 202
    assert response.json()["mapping"] == {"email": 0, "name": 1, "attributes": [["town", 2]]}


def test_a_retry_with_the_same_idempotency_key_returns_the_first_import(client, team):
    headers = {**key(team.a), "HTTP_IDEMPOTENCY_KEY": "upload-42"}
    first = start(client, headers)
    again = start(client, headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"] and Import.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "data", "message"),
    [
        ({}, b"", "The file is empty"),
        ({}, b"\x00\x01\x02binary" * 100, "binary data"),
        ({}, csv_bytes([["Ann"]], header=("name",)), "No column of this file holds email addresses"),
        ({"mapping": json.dumps({"email": "Mail"})}, GOOD, "The file has no column 'Mail'"),
        ({"mapping": "{not json"}, GOOD, "not valid JSON"),
        ({"mode": "delete-everyone"}, GOOD, "Mode must be one of"),
    ],
)
def test_bad_requests_get_a_clear_422_and_store_nothing(client, team, fields, data, message):
    response = start(client, key(team.a), data=data, **fields)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert not Import.objects.exists()


def test_a_missing_file_is_a_clear_422(client, team):
    response = client.post("/api/imports", {"mode": "add"}, **key(team.a))
    assert response.status_code == 422


def test_a_file_over_the_limit_is_a_413(client, team, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    response = start(client, key(team.a), data=b"email\n" + b"someone@example.com\n" * 60_000)
    assert response.status_code == 413
    assert "larger than the 1 MB limit" in response.json()["detail"]
    assert not Import.objects.exists()


def test_a_read_only_key_can_follow_but_not_start_or_cancel(client, team):
    imp = upload(team.a, GOOD)
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    reader = key(team.a, scope="read")
    assert start(client, reader).status_code == 403
    assert client.post(f"/api/imports/{imp.pk}/cancel", **reader).status_code == 403
    assert client.get(f"/api/imports/{imp.pk}", **reader).status_code == 200
    assert Import.objects.count() == 1 and Import.objects.get().status == Import.Status.QUEUED


def test_another_workspace_reaches_no_import(client, team):
    imp = upload(team.a, GOOD)
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    stranger = key(team.b)
    assert client.get(f"/api/imports/{imp.pk}", **stranger).status_code == 404
    assert client.get(f"/api/imports/{imp.pk + 1000}", **stranger).status_code == 404
    assert client.post(f"/api/imports/{imp.pk}/cancel", **stranger).status_code == 404
    assert client.get(f"/api/imports/{imp.pk}/errors", **stranger).status_code == 404
    assert client.get("/api/imports", **stranger).json() == []
    their_list = MailingListFactory(workspace=team.a)
    assert start(client, stranger, list_id=their_list.pk).status_code == 404
    assert Import.objects.get().status == Import.Status.QUEUED and Import.objects.count() == 1


def test_cancelling_through_the_api(client, team):
    imp = upload(team.a, GOOD)
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    headers = key(team.a)
    response = client.post(f"/api/imports/{imp.pk}/cancel", **headers)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert client.post(f"/api/imports/{imp.pk}/cancel", **headers).status_code == 409


def test_an_import_without_rejected_rows_has_no_error_report(client, team):
    imp = upload(team.a, GOOD)
    assert client.get(f"/api/imports/{imp.pk}/errors", **key(team.a)).status_code == 404


def test_a_request_announcing_more_than_the_limit_is_a_413_before_it_is_read(client, team, settings):
    settings.IMPORT_MAX_UPLOAD_MB = 1
    response = start(client, key(team.a), data=b"email\n" + b"someone@example.com\n" * 150_000)
    assert response.status_code == 413
    assert "larger than the 1 MB limit" in response.json()["detail"]
    assert not Import.objects.exists()
