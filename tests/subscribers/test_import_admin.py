"""The imports' admin page: operators see every import and can cancel one."""

import pytest

from subscribers.models import Import
from tests.factories import UserFactory
from tests.subscribers.imports_helpers import csv_bytes, upload

pytestmark = pytest.mark.django_db


def test_operators_list_imports_and_cancel_one(client, team):
    imp = upload(team.a, csv_bytes([["ann@example.com", "Ann", ""]]), name="crm-export.csv")
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.QUEUED)
    client.force_login(UserFactory(email="ops@herald.test", is_staff=True, is_superuser=True))
    page = client.get("/admin/subscribers/import/")
    assert page.status_code == 200 and b"crm-export.csv" in page.content
    response = client.post(
        "/admin/subscribers/import/", {"action": "cancel_imports", "_selected_action": [imp.pk]}, follow=True
    )
    assert b"1 import(s) cancelled." in response.content
    assert Import.objects.get().status == Import.Status.CANCELLED
