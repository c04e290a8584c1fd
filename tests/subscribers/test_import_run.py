"""Running an import end to end in this process: counts, modes, suppressions, re-runs, error report."""

import csv
from pathlib import Path

import pytest
from django.db import connection

from subscribers.imports import import_cancel, import_counts, import_error_report_path, import_process
from subscribers.models import Import, ListMembership, Subscriber, Suppression
from subscribers.services import erasure_digest, suppression_add
from tests.factories import ListMembershipFactory, MailingListFactory, SubscriberFactory
from tests.subscribers.imports_helpers import csv_bytes, run_import, snapshot, upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _small_imports(settings):
    # Several chunks and buckets even for small files, so checkpoints are exercised.
    settings.IMPORT_CHUNK_BYTES = 1024
    settings.IMPORT_BUCKET_ROWS = 100
    settings.IMPORT_WORKERS = 1


ROWS = [
    ["ann@example.com", "Ann", "Oslo"],
    ["BOB@Example.com", "Bob", "Rome"],
    ["not-an-address", "Nobody", "Nowhere"],
    ["Ann@EXAMPLE.com", "Ann again", "Paris"],
    ["", "No email", ""],
    ["cat@example.org", "", ""],
]


def test_an_import_adds_new_subscribers_to_the_list_with_exact_counts(team):
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    imp = run_import(team.a, csv_bytes(ROWS), mailing_list=newsletter, actor=team.alice.user)
    assert imp.status == Import.Status.COMPLETED
    assert import_counts(imp) == {
        "total": 6,
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": 2,
        "duplicates": 1,
        "suppressed_skipped": 0,
    }
    people = {s.email: s for s in Subscriber.objects.filter(workspace=team.a)}
    assert set(people) == {"ann@example.com", "bob@example.com", "cat@example.org"}
    # The first occurrence in the file wins; empty custom fields are left out.
    assert (people["ann@example.com"].name, people["ann@example.com"].attributes) == ("Ann", {"city": "Oslo"})
    assert people["cat@example.org"].attributes == {}
    assert people["bob@example.com"].source == "import" and people["bob@example.com"].consent_at is not None
    assert "alice@acme.test" in people["bob@example.com"].consent_text
    assert set(newsletter.memberships.values_list("status", flat=True)) == {ListMembership.Status.CONFIRMED}
    assert newsletter.memberships.count() == 3
    assert Subscriber.objects.filter(workspace=team.b).count() == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"subscribers_import_stage_{imp.pk}"])
        assert cursor.fetchone()[0] is None, "the staging table is dropped once the import is done"
    assert not Path(imp.file.path).exists(), "the uploaded file is removed once the import is done"
    assert import_error_report_path(imp).exists()


def test_running_the_same_file_again_changes_nothing(team):
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    run_import(team.a, csv_bytes(ROWS), mailing_list=newsletter, mode="upsert")
    before = snapshot(team.a)
    stamps = sorted(Subscriber.objects.filter(workspace=team.a).values_list("updated_at", flat=True))
    again = run_import(team.a, csv_bytes(ROWS), mailing_list=newsletter, mode="upsert")
    assert snapshot(team.a) == before
    assert sorted(Subscriber.objects.filter(workspace=team.a).values_list("updated_at", flat=True)) == stamps
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)


def test_suppressed_and_inactive_addresses_are_never_reactivated(team):
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    for status in ("unsubscribed", "bounced", "complained", "blocklisted"):
        SubscriberFactory(workspace=team.a, email=f"{status}@example.com", status=status, name="Kept")
    left = SubscriberFactory(workspace=team.a, email="left@example.com")
    ListMembershipFactory(mailing_list=newsletter, subscriber=left, status=ListMembership.Status.UNSUBSCRIBED)
    suppression_add(workspace_id=team.a.pk, value="suppressed@example.com")
    suppression_add(workspace_id=team.a.pk, value="blocked.example", kind=Suppression.Kind.DOMAIN)
    suppression_add(
        workspace_id=team.a.pk,
        value=erasure_digest(workspace_id=team.a.pk, email="erased@example.com"),
        kind=Suppression.Kind.HASH,
    )
    rows = [[f"{s}@example.com", "New name", "X"] for s in ("unsubscribed", "bounced", "complained", "blocklisted")]
    rows += [["left@example.com", "", ""], ["suppressed@example.com", "", ""], ["anyone@blocked.example", "", ""]]
    rows += [["Erased@Example.com", "", ""], ["fresh@example.com", "", ""]]
    imp = run_import(team.a, csv_bytes(rows), mailing_list=newsletter, mode="upsert")
    assert (imp.inserted, imp.suppressed_skipped, imp.unchanged) == (1, 7, 1)
    statuses = dict(Subscriber.objects.filter(workspace=team.a).values_list("email", "status"))
    assert statuses == {
        "unsubscribed@example.com": "unsubscribed",
        "bounced@example.com": "bounced",
        "complained@example.com": "complained",
        "blocklisted@example.com": "blocklisted",
        "left@example.com": "active",
        "fresh@example.com": "active",
    }
    assert set(Subscriber.objects.filter(workspace=team.a, name="New name")) == set()
    assert newsletter.memberships.get(subscriber=left).status == ListMembership.Status.UNSUBSCRIBED
    assert list(newsletter.memberships.values_list("subscriber__email", "status").order_by("subscriber__email")) == [
        ("fresh@example.com", "confirmed"),
        ("left@example.com", "unsubscribed"),
    ]


def test_upsert_updates_the_name_and_merges_the_fields_of_existing_subscribers(team):
    SubscriberFactory(workspace=team.a, email="ann@example.com", name="Old", attributes={"city": "Oslo", "vip": "yes"})
    SubscriberFactory(workspace=team.a, email="bob@example.com", name="Bob", attributes={})
    rows = [["ann@example.com", "Ann Lee", "Bergen"], ["bob@example.com", "", ""], ["new@example.com", "New", "Rome"]]
    imp = run_import(team.a, csv_bytes(rows), mode="upsert")
    assert (imp.inserted, imp.updated, imp.unchanged) == (1, 1, 1)
    ann = Subscriber.objects.get(workspace=team.a, email="ann@example.com")
    assert (ann.name, ann.attributes) == ("Ann Lee", {"city": "Bergen", "vip": "yes"})
    assert Subscriber.objects.get(workspace=team.a, email="bob@example.com").name == "Bob"


def test_add_leaves_existing_subscribers_as_they_are_but_puts_them_on_the_list(team):
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    SubscriberFactory(workspace=team.a, email="ann@example.com", name="Old")
    imp = run_import(team.a, csv_bytes([["ann@example.com", "Ann", "Oslo"]]), mailing_list=newsletter)
    assert (imp.inserted, imp.updated) == (0, 1)
    assert Subscriber.objects.get(workspace=team.a, email="ann@example.com").name == "Old"
    assert newsletter.memberships.filter(subscriber__email="ann@example.com").exists()


def test_a_double_opt_in_list_gets_unconfirmed_members(team):
    confirmed_list = MailingListFactory(workspace=team.a, name="Confirmed first", opt_in="double")
    run_import(team.a, csv_bytes([["ann@example.com", "Ann", ""]]), mailing_list=confirmed_list)
    assert confirmed_list.memberships.get().status == ListMembership.Status.UNCONFIRMED


def test_unsubscribe_mode_takes_the_addresses_off_the_list_or_off_everything(team):
    newsletter = MailingListFactory(workspace=team.a, name="Newsletter")
    other = MailingListFactory(workspace=team.a, name="Other")
    for email in ("ann@example.com", "bob@example.com"):
        person = SubscriberFactory(workspace=team.a, email=email)
        ListMembershipFactory(mailing_list=newsletter, subscriber=person)
        ListMembershipFactory(mailing_list=other, subscriber=person)
    imp = run_import(
        team.a,
        csv_bytes([["ann@example.com"], ["nobody@example.com"]], header=("email",)),
        mode="unsubscribe",
        mailing_list=newsletter,
    )
    assert (imp.updated, imp.unchanged, imp.inserted) == (1, 1, 0)
    assert newsletter.memberships.get(subscriber__email="ann@example.com").status == "unsubscribed"
    assert other.memberships.get(subscriber__email="ann@example.com").status == "confirmed"
    assert Subscriber.objects.get(workspace=team.a, email="ann@example.com").status == "active"

    everywhere = run_import(team.a, csv_bytes([["bob@example.com"]], header=("email",)), mode="unsubscribe")
    assert everywhere.updated == 1
    assert Subscriber.objects.get(workspace=team.a, email="bob@example.com").status == "unsubscribed"
    assert set(ListMembership.objects.filter(subscriber__email="bob@example.com").values_list("status", flat=True)) == {
        "unsubscribed"
    }
    assert not Subscriber.objects.filter(email="nobody@example.com").exists()


def test_blocklist_mode_blocklists_and_suppresses_but_never_stores_an_erased_address(team):
    SubscriberFactory(workspace=team.a, email="ann@example.com")
    suppression_add(
        workspace_id=team.a.pk,
        value=erasure_digest(workspace_id=team.a.pk, email="erased@example.com"),
        kind=Suppression.Kind.HASH,
    )
    rows = [["ann@example.com"], ["stranger@example.com"], ["erased@example.com"]]
    imp = run_import(team.a, csv_bytes(rows, header=("email",)), mode="blocklist", actor=team.alice.user)
    assert (imp.updated, imp.inserted, imp.suppressed_skipped) == (1, 1, 1)
    assert Subscriber.objects.get(workspace=team.a, email="ann@example.com").status == "blocklisted"
    addresses = set(
        Suppression.objects.filter(workspace=team.a, kind=Suppression.Kind.ADDRESS).values_list("value", flat=True)
    )
    assert addresses == {"ann@example.com", "stranger@example.com"}
    assert not Subscriber.objects.filter(email="stranger@example.com").exists()


def test_the_error_report_gives_each_rejected_row_its_reason_with_formulas_neutralised(team):
    rows = [
        ["ann@example.com", "Ann", "Oslo"],
        ['=HYPERLINK("http://evil.example")', "@SUM(A1)", "+1"],
        ["bob@@example.com", "-2", "ok"],
    ]
    imp = run_import(team.a, csv_bytes(rows))
    assert imp.rejected == 2
    with open(import_error_report_path(imp), newline="", encoding="utf-8") as report:
        lines = list(csv.reader(report))
    assert lines[0] == ["row", "reason", "email", "name", "city"]
    assert lines[1][0] == "3" and lines[1][2:] == ['\'=HYPERLINK("http://evil.example")', "'@SUM(A1)", "'+1"]
    assert lines[2][0] == "4" and "@" in lines[2][1] and lines[2][3] == "'-2"
    assert all(line[1] for line in lines[1:])
    assert not Subscriber.objects.filter(name__startswith="@").exists()


def test_a_headerless_file_imports_every_row(team):
    imp = upload(team.a, b"ann@example.com,Ann\nbob@example.com,Bob\n")
    assert imp.columns == ["ann@example.com", "Ann"]
    from tests.subscribers.imports_helpers import run_import as run

    done = run(
        team.a,
        b"ann@example.com,Ann\nbob@example.com,Bob\n",
        mapping={"email": 0, "name": 1, "attributes": []},
        has_header=False,
    )
    assert (done.total_rows, done.inserted) == (2, 2)


def test_semicolons_quotes_and_line_breaks_inside_cells_are_read_correctly(team):
    data = b'E-mail;Name;Note\nann@example.com;"Lee; Ann";"line one\nline two"\n'
    imp = run_import(team.a, data, mapping={"email": 0, "name": 1, "attributes": [["note", 2]]})
    ann = Subscriber.objects.get(workspace=team.a)
    assert (imp.inserted, ann.name, ann.attributes) == (1, "Lee; Ann", {"note": "line one\nline two"})


def test_validating_in_separate_processes_gives_the_same_result(team, settings):
    rows = [[f"p{i}@example.com", f"P {i}", str(i)] for i in range(300)] + [["bad", "", ""], ["P7@example.com", "", ""]]
    inline = run_import(team.b, csv_bytes(rows))
    settings.IMPORT_WORKERS = 2
    pooled = run_import(team.a, csv_bytes(rows))
    assert (
        import_counts(pooled)
        == import_counts(inline)
        == {
            "total": 302,
            "inserted": 300,
            "updated": 0,
            "unchanged": 0,
            "rejected": 1,
            "duplicates": 1,
            "suppressed_skipped": 0,
        }
    )
    assert snapshot(team.a) == snapshot(team.b)


def test_a_cancelled_import_is_not_run_and_a_second_delivery_does_nothing(team):
    from unittest import mock

    from subscribers.imports import import_configure

    imp = upload(team.a, csv_bytes(ROWS))
    with mock.patch("subscribers.imports._enqueue"):
        import_configure(imp=imp, mapping=imp.mapping)
    assert import_cancel(imp=imp)
    import_process(import_id=imp.pk)
    imp.refresh_from_db()
    assert imp.status == Import.Status.CANCELLED and imp.attempt == 0
    assert not Subscriber.objects.exists()
    assert not import_cancel(imp=imp)


def test_cancelling_a_running_import_stops_it_at_the_next_checkpoint_and_cleans_up(team):
    from unittest import mock

    from subscribers import imports

    imp = upload(team.a, csv_bytes([[f"p{i}@example.com", "", ""] for i in range(2000)]))
    with mock.patch("subscribers.imports._enqueue"):
        imports.import_configure(imp=imp, mapping=imp.mapping)
    original = imports._stage_chunk
    calls = []

    def stage_then_cancel(imp_, staging, result, report):
        calls.append(result.index)
        original(imp_, staging, result, report)
        if len(calls) == 2:
            import_cancel(imp=Import.objects.get(pk=imp_.pk))

    with mock.patch("subscribers.imports._stage_chunk", side_effect=stage_then_cancel):
        import_process(import_id=imp.pk)
    imp.refresh_from_db()
    assert imp.status == Import.Status.CANCELLED
    assert len(calls) == 3, "the worker stops at the first checkpoint after the cancel"
    assert imp.chunks_staged == 2 and imp.phase == Import.Phase.STAGING
    assert not Subscriber.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"subscribers_import_stage_{imp.pk}"])
        assert cursor.fetchone()[0] is None
