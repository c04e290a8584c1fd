"""A marketer imports a CSV file in a real browser: upload, map columns, watch the progress, open the error report."""

import pytest

from accounts.models import Member
from subscribers.models import Import, Subscriber
from tests.factories import PASSWORD, MailingListFactory, MemberFactory, UserFactory, WorkspaceFactory
from tests.subscribers.imports_helpers import csv_bytes
from tests.workers import running_worker

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_uploading_mapping_and_watching_an_import_to_the_end(page, live_server, tmp_path):
    workspace = WorkspaceFactory(name="Northwind")
    MemberFactory(workspace=workspace, user=UserFactory(email="nina@northwind.test"), role=Member.Role.OWNER)
    MailingListFactory(workspace=workspace, name="Newsletter")
    rows = [[f"person{i}@example.com", f"Person {i}", f"City {i % 5}"] for i in range(3000)]
    rows += [['=HYPERLINK("http://evil.example")', "Mallory", "x"], ["not an address", "Nobody", "y"]]
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_bytes(rows, header=("Email", "Full name", "Town")))

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("nina@northwind.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")

    with running_worker(queues=("imports",), extra_env={"IMPORT_CHUNK_BYTES": "4096", "IMPORT_BUCKET_ROWS": "100"}):
        page.goto(f"{live_server.url}/subscribers/imports/")
        page.get_by_role("link", name="Import a CSV file").first.click()
        page.get_by_label("CSV file").set_input_files(str(path))
        page.get_by_label("List").select_option(label="Newsletter")
        page.get_by_role("button", name="Upload and map columns").click()

        preview = page.get_by_test_id("preview")
        assert preview.get_by_text("person0@example.com").is_visible()
        assert page.get_by_label("Column 1: Email").input_value() == "email"
        assert page.get_by_label("Column 2: Full name").input_value() == "name"
        page.get_by_label("Custom field key for column 3").fill("city")
        page.get_by_role("button", name="Start the import").click()

        bar = page.get_by_role("progressbar", name="Import progress")
        page.wait_for_function(
            "() => document.querySelector('[role=progressbar]').getAttribute('aria-valuenow') === '100'",
            timeout=60000,
        )
        assert bar.get_attribute("aria-valuenow") == "100"
        assert page.get_by_role("heading", name="Completed").is_visible()
        counts = page.get_by_test_id("counts")
        assert counts.locator('[data-count="inserted"]').inner_text() == "3,000"
        assert counts.locator('[data-count="rejected"]').inner_text() == "2"

        report_link = page.get_by_role("link", name="Download the rejected rows (CSV)")
        assert report_link.is_visible()
        with page.expect_download() as download_info:
            report_link.click()
        report = download_info.value.path().read_text(encoding="utf-8")
    assert "'=HYPERLINK" in report and "not an address" in report
    assert report.splitlines()[0] == "row,reason,Email,Full name,Town"
    assert Import.objects.get().status == Import.Status.COMPLETED
    assert Subscriber.objects.get(email="person7@example.com").attributes == {"city": "City 2"}
