"""The subscribers section of the dashboard: subscribers, lists, segments and suppressions."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import require_write
from accounts.decorators import member_required
from subscribers.access import (
    get_list_for_member,
    get_segment_for_member,
    get_subscriber_for_member,
    get_suppression_for_member,
)
from subscribers.audit import audit_record
from subscribers.forms import (
    BulkActionForm,
    MailingListForm,
    MembershipForm,
    SegmentForm,
    SubscriberFilterForm,
    SubscriberForm,
    SuppressionForm,
    SuppressionSearchForm,
)
from subscribers.models import AuditEntry, ListMembership, MailingList, Segment, Subscriber, Suppression
from subscribers.segments import (
    ATTRIBUTE_OPS,
    DATE_FIELDS,
    DATE_OPS,
    LIST_OPS,
    STATUS_OPS,
    TEXT_FIELDS,
    TEXT_OPS,
    SegmentRuleError,
    validate_rules,
)
from subscribers.selectors import (
    audit_entries_for_subscriber,
    keyset_page,
    lists_with_counts,
    segment_count,
    subscriber_export,
    subscribers_table,
)
from subscribers.services import (
    BULK_ACTIONS,
    list_create,
    list_delete,
    list_update,
    membership_add,
    membership_remove,
    segment_create,
    segment_delete,
    segment_update,
    subscriber_create,
    subscriber_delete,
    subscriber_erase,
    subscriber_unsubscribe,
    subscriber_update,
    subscribers_bulk,
    suppression_add,
    suppression_remove,
)

PAGE_SIZE = 50


def _lists(member):
    return list(MailingList.objects.filter(workspace_id=member.workspace_id).order_by("name"))


def _errors(form, exc: ValidationError) -> None:
    for message in exc.messages:
        form.add_error(None, message)


def _safe_next(request) -> str:
    """Where to go back to after a bulk action: a page of this site, else the subscriber table."""
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return next_url
    return reverse("subscribers:list")


def _query_without(request, *names) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


# --- subscribers ---------------------------------------------------------------------------


@require_GET
@member_required
def subscriber_list(request):
    member = request.member
    lists = _lists(member)
    segments = list(Segment.objects.filter(workspace_id=member.workspace_id).order_by("name"))
    filters = SubscriberFilterForm(request.GET, lists=lists, segments=segments)
    data = filters.cleaned_data if filters.is_valid() else {}
    segment = next((s for s in segments if s.pk == data.get("segment")), None)
    queryset = subscribers_table(
        workspace_id=member.workspace_id,
        search=data.get("q") or "",
        status=data.get("status") or "",
        list_id=data.get("list"),
        segment=segment,
    )
    page = keyset_page(queryset, after=data.get("after"), before=data.get("before"), size=PAGE_SIZE)
    any_subscriber = bool(page.rows) or Subscriber.objects.filter(workspace_id=member.workspace_id).exists()
    return render(
        request,
        "subscribers/list.html",
        {
            "filters": filters,
            "page": page,
            "base_query": _query_without(request, "after", "before"),
            "filtered": any(data.get(name) for name in ("q", "status", "list", "segment")),
            "any_subscriber": any_subscriber,
            "lists": lists,
            "bulk_actions": BULK_ACTIONS,
        },
    )


@require_POST
@member_required
def subscriber_bulk(request):
    """Step one shows what will happen to how many; step two (confirm=yes) does it."""
    member = request.member
    require_write(member)
    lists = _lists(member)
    form = BulkActionForm(request.POST, lists=lists)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(_safe_next(request))
    data = form.cleaned_data
    selected = Subscriber.objects.filter(workspace_id=member.workspace_id, pk__in=data["ids"])
    mailing_list = next((m for m in lists if m.pk == data.get("list_id")), None)
    if request.POST.get("confirm") != "yes":
        return render(
            request,
            "subscribers/bulk_confirm.html",
            {
                "action": data["action"],
                "action_label": BULK_ACTIONS[data["action"]],
                "subscribers": selected.order_by("email")[:PAGE_SIZE],
                "count": selected.count(),
                "ids": data["ids"],
                "mailing_list": mailing_list,
                "next": request.POST.get("next", ""),
            },
        )
    try:
        changed = subscribers_bulk(
            workspace_id=member.workspace_id,
            subscriber_ids=data["ids"],
            action=data["action"],
            list_id=data.get("list_id"),
            actor=request.user,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{BULK_ACTIONS[data['action']]}: {changed} subscriber(s) changed.")
    return redirect(_safe_next(request))


@require_http_methods(["GET", "POST"])
@member_required
def subscriber_create_view(request):
    member = request.member
    require_write(member)
    lists = _lists(member)
    form = SubscriberForm(request.POST or None, lists=lists)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            subscriber = subscriber_create(
                workspace_id=member.workspace_id,
                email=data["email"],
                name=data["name"],
                attributes=data["attributes"],
                list_ids=data["lists"],
                actor=request.user,
            )
        except ValidationError as exc:
            _errors(form, exc)
        else:
            messages.success(request, f"{subscriber.email} was added.")
            return redirect("subscribers:detail", subscriber.pk)
    return render(
        request,
        "subscribers/subscriber_form.html",
        {"form": form, "creating": True},
        status=400 if form.errors else 200,
    )


@require_GET
@member_required
def subscriber_detail(request, subscriber_id):
    subscriber = get_subscriber_for_member(request.member, subscriber_id)
    memberships = ListMembership.objects.filter(subscriber=subscriber).select_related("mailing_list")
    on_lists = {m.mailing_list_id for m in memberships}
    return render(
        request,
        "subscribers/detail.html",
        {
            "subscriber": subscriber,
            "memberships": memberships.order_by("mailing_list__name"),
            "entries": audit_entries_for_subscriber(workspace_id=subscriber.workspace_id, subscriber_id=subscriber.pk),
            "membership_form": MembershipForm(lists=[m for m in _lists(request.member) if m.pk not in on_lists]),
            "attributes": sorted(subscriber.attributes.items()) if isinstance(subscriber.attributes, dict) else [],
        },
    )


@require_http_methods(["GET", "POST"])
@member_required
def subscriber_edit(request, subscriber_id):
    member = request.member
    subscriber = get_subscriber_for_member(member, subscriber_id, write=True)
    initial = {
        "email": subscriber.email,
        "name": subscriber.name,
        "attributes": subscriber.attributes,
        "status": subscriber.status,
    }
    form = SubscriberForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            subscriber_update(
                subscriber=subscriber,
                actor=request.user,
                email=data["email"],
                name=data["name"],
                attributes=data["attributes"],
                status=data["status"],
                may_reactivate=member.can_manage,
            )
        except ValidationError as exc:
            subscriber.refresh_from_db()
            _errors(form, exc)
        else:
            messages.success(request, "Changes saved.")
            return redirect("subscribers:detail", subscriber.pk)
    return render(
        request,
        "subscribers/subscriber_form.html",
        {"form": form, "subscriber": subscriber},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@member_required
def subscriber_delete_view(request, subscriber_id):
    subscriber = get_subscriber_for_member(request.member, subscriber_id, write=True)
    if request.method == "GET":
        return render(request, "subscribers/subscriber_delete.html", {"subscriber": subscriber})
    email = subscriber.email
    subscriber_delete(subscriber=subscriber, actor=request.user)
    messages.success(request, f"{email} was deleted.")
    return redirect("subscribers:list")


@require_http_methods(["GET", "POST"])
@member_required
def subscriber_erase_view(request, subscriber_id):
    subscriber = get_subscriber_for_member(request.member, subscriber_id, write=True)
    if request.method == "GET":
        return render(request, "subscribers/subscriber_erase.html", {"subscriber": subscriber})
    if request.POST.get("email", "").strip().lower() != subscriber.email:
        messages.error(request, "Type the subscriber's address exactly to confirm the erasure.")
        return render(request, "subscribers/subscriber_erase.html", {"subscriber": subscriber}, status=400)
    subscriber_erase(subscriber=subscriber, actor=request.user)
    messages.success(request, "The subscriber was erased. Only a hash of the address remains, to keep them off.")
    return redirect("subscribers:list")


@require_GET
@member_required
def subscriber_export_view(request, subscriber_id):
    subscriber = get_subscriber_for_member(request.member, subscriber_id)
    data = subscriber_export(subscriber=subscriber)
    audit_record(
        workspace_id=subscriber.workspace_id,
        actor=request.user,
        action=AuditEntry.Action.EXPORT,
        object_type="subscriber",
        object_id=subscriber.pk,
        object_repr=subscriber.email,
        subscriber_id=subscriber.pk,
    )
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False), content_type="application/json"
    )
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="subscriber-{subscriber.pk}-{stamp}.json"'
    return response


@require_POST
@member_required
def subscriber_unsubscribe_view(request, subscriber_id):
    subscriber = get_subscriber_for_member(request.member, subscriber_id, write=True)
    if subscriber_unsubscribe(
        subscriber_id=subscriber.pk, workspace_id=subscriber.workspace_id, actor=request.user, method="dashboard"
    ):
        messages.success(request, f"{subscriber.email} was unsubscribed from everything.")
    else:
        messages.info(request, f"{subscriber.email} was already unsubscribed.")
    return redirect("subscribers:detail", subscriber.pk)


@require_POST
@member_required
def membership_add_view(request, subscriber_id):
    subscriber = get_subscriber_for_member(request.member, subscriber_id, write=True)
    form = MembershipForm(request.POST, lists=_lists(request.member))
    if not form.is_valid():
        messages.error(request, "Choose one of the workspace's lists.")
        return redirect("subscribers:detail", subscriber.pk)
    mailing_list = get_list_for_member(request.member, form.cleaned_data["list_id"], write=True)
    _, changed = membership_add(subscriber=subscriber, mailing_list=mailing_list, actor=request.user)
    if changed:
        messages.success(request, f"Added to {mailing_list.name}.")
    else:
        messages.info(
            request, f"Already on {mailing_list.name} (someone who left a list rejoins only by their own choice)."
        )
    return redirect("subscribers:detail", subscriber.pk)


@require_POST
@member_required
def membership_remove_view(request, subscriber_id, list_id):
    subscriber = get_subscriber_for_member(request.member, subscriber_id, write=True)
    mailing_list = get_list_for_member(request.member, list_id, write=True)
    membership_remove(subscriber=subscriber, mailing_list=mailing_list, actor=request.user)
    messages.success(request, f"Removed from {mailing_list.name}.")
    return redirect("subscribers:detail", subscriber.pk)


# --- lists ---------------------------------------------------------------------------------


@require_GET
@member_required
def list_index(request):
    return render(
        request,
        "subscribers/lists.html",
        {"lists": lists_with_counts(workspace_id=request.member.workspace_id).order_by("name")},
    )


@require_http_methods(["GET", "POST"])
@member_required
def list_create_view(request):
    member = request.member
    require_write(member)
    from subscribers.models import DEFAULT_CONSENT_TEXT

    form = MailingListForm(request.POST or None, initial={"opt_in": "double", "consent_text": DEFAULT_CONSENT_TEXT})
    if request.method == "POST" and form.is_valid():
        try:
            mailing_list = list_create(workspace_id=member.workspace_id, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _errors(form, exc)
        else:
            messages.success(request, f"List {mailing_list.name!r} created.")
            return redirect("subscribers:list_detail", mailing_list.pk)
    return render(
        request, "subscribers/list_form.html", {"form": form, "creating": True}, status=400 if form.errors else 200
    )


@require_GET
@member_required
def list_detail(request, list_id):
    mailing_list = get_list_for_member(request.member, list_id)
    counted = lists_with_counts(workspace_id=request.member.workspace_id).get(pk=mailing_list.pk)
    subscribe_url = request.build_absolute_uri(reverse("subscribe", args=[mailing_list.public_token]))
    return render(
        request,
        "subscribers/list_detail.html",
        {"mailing_list": counted, "subscribe_url": subscribe_url},
    )


@require_http_methods(["GET", "POST"])
@member_required
def list_edit(request, list_id):
    mailing_list = get_list_for_member(request.member, list_id, write=True)
    initial = {
        "name": mailing_list.name,
        "description": mailing_list.description,
        "opt_in": mailing_list.opt_in,
        "consent_text": mailing_list.consent_text,
    }
    form = MailingListForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            list_update(mailing_list=mailing_list, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _errors(form, exc)
        else:
            messages.success(request, "List saved.")
            return redirect("subscribers:list_detail", mailing_list.pk)
    return render(
        request,
        "subscribers/list_form.html",
        {"form": form, "mailing_list": mailing_list},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@member_required
def list_delete_view(request, list_id):
    mailing_list = get_list_for_member(request.member, list_id, write=True)
    if request.method == "GET":
        members = mailing_list.memberships.count()
        return render(request, "subscribers/list_delete.html", {"mailing_list": mailing_list, "members": members})
    name = mailing_list.name
    list_delete(mailing_list=mailing_list, actor=request.user)
    messages.success(request, f"List {name!r} was deleted; its subscribers remain.")
    return redirect("subscribers:lists")


# --- segments ------------------------------------------------------------------------------


def _builder_context(member) -> dict:
    """What the segment builder's script needs: fields, their operators, the lists."""
    fields = [{"value": f, "label": f.replace("_", " ").capitalize(), "ops": sorted(TEXT_OPS)} for f in TEXT_FIELDS]
    fields += [{"value": f, "label": f.replace("_", " ").capitalize(), "ops": sorted(DATE_OPS)} for f in DATE_FIELDS]
    fields.append({"value": "status", "label": "Status", "ops": sorted(STATUS_OPS)})
    fields.append({"value": "list", "label": "List membership", "ops": sorted(LIST_OPS)})
    fields.append({"value": "attribute:", "label": "Attribute…", "ops": sorted(ATTRIBUTE_OPS)})
    return {
        "fields": sorted(fields, key=lambda f: f["label"]),
        "lists": [{"id": m.pk, "name": m.name} for m in _lists(member)],
        "statuses": [{"value": v, "label": label} for v, label in Subscriber.Status.choices],
    }


@require_GET
@member_required
def segment_index(request):
    segments = Segment.objects.filter(workspace_id=request.member.workspace_id).order_by("name")
    return render(request, "subscribers/segments.html", {"segments": segments})


def _segment_form_page(request, *, segment=None):
    member = request.member
    require_write(member)
    initial = {"name": segment.name, "rules": json.dumps(segment.rules)} if segment else {}
    initial.setdefault("rules", json.dumps({"match": "all", "conditions": []}))
    form = SegmentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if segment is None:
                segment = segment_create(
                    workspace_id=member.workspace_id, name=data["name"], rules=data["rules"], actor=request.user
                )
            else:
                segment_update(segment=segment, name=data["name"], rules=data["rules"], actor=request.user)
        except ValidationError as exc:
            if segment is not None:
                segment.refresh_from_db()
            _errors(form, exc)
        else:
            messages.success(request, f"Segment {segment.name!r} saved.")
            return redirect("subscribers:segments")
    return render(
        request,
        "subscribers/segment_form.html",
        {"form": form, "segment": segment, "builder": _builder_context(member)},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@member_required
def segment_create_view(request):
    return _segment_form_page(request)


@require_http_methods(["GET", "POST"])
@member_required
def segment_edit(request, segment_id):
    segment = get_segment_for_member(request.member, segment_id, write=True)
    return _segment_form_page(request, segment=segment)


@require_http_methods(["GET", "POST"])
@member_required
def segment_delete_view(request, segment_id):
    segment = get_segment_for_member(request.member, segment_id, write=True)
    if request.method == "GET":
        return render(request, "subscribers/segment_delete.html", {"segment": segment})
    segment_delete(segment=segment, actor=request.user)
    messages.success(request, f"Segment {segment.name!r} was deleted.")
    return redirect("subscribers:segments")


@require_GET
@member_required
def segment_count_view(request):
    """JSON for the builder's live count: {"count": n} or {"error": "..."} with 400."""
    try:
        rules = validate_rules(json.loads(request.GET.get("rules", "")))
        for condition in rules["conditions"]:
            if condition["field"] == "list":
                get_list_for_member(request.member, condition["value"])
    except json.JSONDecodeError:
        return JsonResponse({"error": "The rules are not valid JSON."}, status=400)
    except SegmentRuleError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except Http404:
        # A list of another workspace reads as one that does not exist.
        return JsonResponse({"error": "One of the chosen lists does not exist."}, status=400)
    return JsonResponse({"count": segment_count(workspace_id=request.member.workspace_id, rules=rules)})


# --- suppressions --------------------------------------------------------------------------


@require_GET
@member_required
def suppression_index(request):
    member = request.member
    search = SuppressionSearchForm(request.GET)
    data = search.cleaned_data if search.is_valid() else {}
    queryset = Suppression.objects.filter(workspace_id=member.workspace_id).select_related("created_by")
    if data.get("q"):
        queryset = queryset.filter(value__icontains=data["q"].strip().lower())
    if data.get("kind"):
        queryset = queryset.filter(kind=data["kind"])
    page = keyset_page(queryset, after=data.get("after"), before=data.get("before"), size=PAGE_SIZE)
    return render(
        request,
        "subscribers/suppressions.html",
        {
            "search": search,
            "page": page,
            "form": SuppressionForm(),
            "base_query": _query_without(request, "after", "before"),
            "filtered": bool(data.get("q") or data.get("kind")),
        },
    )


@require_POST
@member_required
def suppression_add_view(request):
    member = request.member
    require_write(member)
    form = SuppressionForm(request.POST)
    if form.is_valid():
        try:
            suppression, created = suppression_add(
                workspace_id=member.workspace_id,
                value=form.cleaned_data["value"],
                kind=form.cleaned_data["kind"],
                note=form.cleaned_data["note"],
                actor=request.user,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            if created:
                messages.success(request, f"{suppression.value} will not be mailed.")
            else:
                messages.info(request, f"{suppression.value} was already suppressed.")
    else:
        messages.error(request, "Enter an address or a domain to suppress.")
    return redirect("subscribers:suppressions")


@require_http_methods(["GET", "POST"])
@member_required
def suppression_remove_view(request, suppression_id):
    suppression = get_suppression_for_member(request.member, suppression_id, write=True)
    if request.method == "GET":
        return render(request, "subscribers/suppression_remove.html", {"suppression": suppression})
    suppression_remove(suppression=suppression, actor=request.user)
    messages.success(request, "The suppression was removed.")
    return redirect("subscribers:suppressions")
