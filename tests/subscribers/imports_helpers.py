"""Helpers shared by the import tests: files, uploads and a full in-process run."""

import csv
import io
from unittest import mock

from subscribers.imports import import_configure, import_process, import_upload
from subscribers.models import Import, ListMembership, Subscriber


def csv_bytes(rows, header=("email", "name", "city")) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def upload(workspace, data: bytes, *, mode="add", mailing_list=None, actor=None, name="people.csv") -> Import:
    return import_upload(
        workspace_id=workspace.pk,
        actor=actor,
        chunks=iter([data]),
        original_name=name,
        mode=mode,
        mailing_list=mailing_list,
    )


def run_import(workspace, data: bytes, *, mapping=None, has_header=True, **kwargs) -> Import:
    """Upload, map and run an import here, in this process, to the end."""
    imp = upload(workspace, data, **kwargs)
    with mock.patch("subscribers.imports._enqueue") as enqueue:
        imp = import_configure(imp=imp, mapping=mapping or imp.mapping, has_header=has_header)
    enqueue.assert_called_once_with(imp.pk)
    import_process(import_id=imp.pk)
    imp.refresh_from_db()
    return imp


def snapshot(workspace) -> dict:
    """Everything an import may change in a workspace, comparable across workspaces."""
    subscribers = {
        s.email: (s.name, s.attributes, s.status, s.source) for s in Subscriber.objects.filter(workspace=workspace)
    }
    memberships = sorted(
        (m.mailing_list.name, m.subscriber.email, m.status)
        for m in ListMembership.objects.filter(workspace=workspace).select_related("mailing_list", "subscriber")
    )
    return {"subscribers": subscribers, "memberships": memberships}
