"""The public status page and the operators' incident pages."""

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from operations import incidents
from operations.forms import IncidentOpenForm, IncidentResolveForm, IncidentUpdateForm, StatusSubscribeForm
from operations.models import Incident


@require_safe
def status_page(request):
    overview = incidents.status_overview()
    return render(
        request,
        "operations/status.html",
        {
            "overview": overview,
            "overall_label": incidents.STATE_LABELS[overview.overall],
            "title": settings.STATUS_PAGE_TITLE,
            "subscribe_form": StatusSubscribeForm(),
        },
    )


@require_safe
def status_json(request):
    overview = incidents.status_overview()
    return JsonResponse(
        {"status": overview.overall, "components": overview.components, "incidents": overview.incidents}
    )


@require_POST
def status_subscribe(request):
    form = StatusSubscribeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a valid email address to receive updates.")
        return redirect("operations:status")
    incidents.status_subscribe(email=form.cleaned_data["email"])
    messages.success(request, "Check your inbox: confirm the address to start receiving updates.")
    return redirect("operations:status")


@require_safe
def status_confirm(request, token):
    subscription = incidents.status_confirm(token=token)
    if subscription is None:
        messages.error(request, "That confirmation link is invalid or has expired.")
    else:
        messages.success(request, f"{subscription.email} will receive incident updates.")
    return redirect("operations:status")


@require_http_methods(["GET", "POST"])
def status_unsubscribe(request, token):
    email = incidents.email_from_token(token)
    if email is None:
        messages.error(request, "That link is invalid.")
        return redirect("operations:status")
    if request.method == "POST":
        incidents.status_unsubscribe(token=token)
        messages.success(request, f"{email} will not receive incident updates any more.")
        return redirect("operations:status")
    return render(request, "operations/status_unsubscribe.html", {"email": email})


@staff_member_required
@require_safe
def slo_overview(request):
    from operations.slo import objectives_report
    from operations.synthetic import synthetic_timeline

    return render(
        request, "operations/slos.html", {"objectives": objectives_report(), "synthetic": synthetic_timeline()}
    )


@staff_member_required
@require_http_methods(["GET", "POST"])
def incident_list(request):
    form = IncidentOpenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            incident = incidents.incident_open(**form.cleaned_data, by=request.user.get_username())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Incident opened; it is on the status page and subscribers are being told.")
            return redirect("operations:incident_detail", incident.pk)
    return render(
        request,
        "operations/incident_list.html",
        {"form": form, "incidents": Incident.objects.all()[:100]},
        status=400 if form.errors else 200,
    )


@staff_member_required
@require_http_methods(["GET", "POST"])
def incident_detail(request, incident_id):
    incident = get_object_or_404(Incident, pk=incident_id)
    update_form = IncidentUpdateForm(
        request.POST if "post_update" in request.POST else None, initial={"status": incident.status}
    )
    resolve_form = IncidentResolveForm(request.POST if "resolve" in request.POST else None)
    form = update_form if "post_update" in request.POST else resolve_form if "resolve" in request.POST else None
    if form is not None and form.is_valid():
        try:
            if form is update_form:
                incidents.incident_post_update(incident=incident, **form.cleaned_data, by=request.user.get_username())
            else:
                incidents.incident_resolve(incident=incident, **form.cleaned_data, by=request.user.get_username())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Posted; the status page shows it and subscribers are being told.")
            return redirect("operations:incident_detail", incident.pk)
    return render(
        request,
        "operations/incident_detail.html",
        {
            "incident": incident,
            "updates": incident.updates.all(),
            "update_form": update_form,
            "resolve_form": resolve_form,
            "component_names": [incidents.COMPONENTS.get(key, key) for key in incident.components],
        },
        status=400 if form is not None and form.errors else 200,
    )
