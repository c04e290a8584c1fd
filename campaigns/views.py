"""The campaigns section of the dashboard: list, create and edit drafts, detail with live progress,
lifecycle actions behind a confirmation, and the workspace's SMTP relays."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from accounts.access import require_manage, require_write
from accounts.decorators import member_required
from campaigns import selectors, sending, services
from campaigns.access import get_campaign_for_member, get_relay_for_member
from campaigns.forms import CampaignForm, RelayForm, ScheduleForm
from campaigns.models import Campaign
from campaigns.relays import relay_test

PAGE_SIZE = 25


@member_required
def campaign_list(request):
    campaigns = selectors.campaigns_for_workspace(workspace_id=request.member.workspace_id)
    page = Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(campaign, selectors.campaign_progress(campaign=campaign)) for campaign in page]
    return render(request, "campaigns/list.html", {"page": page, "rows": rows})


@require_http_methods(["GET", "POST"])
@member_required
def campaign_create(request):
    member = request.member
    require_write(member)
    form = CampaignForm(request.POST or None, workspace=member.workspace)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(
                workspace=member.workspace, actor=request.user, **form.service_arguments()
            )
        except services.CampaignError as error:
            form.add_error(_form_field(form, error.field), error.message)
        else:
            messages.success(request, f"Draft “{campaign.name}” created.")
            return redirect("campaigns:detail", campaign.pk)
    return render(
        request, "campaigns/campaign_form.html", {"form": form, "editing": False}, status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
@member_required
def campaign_edit(request, campaign_id):
    campaign = get_campaign_for_member(request.member, campaign_id, write=True)
    if not campaign.is_editable:
        messages.error(request, "Only a draft can be edited; duplicate this campaign to change it.")
        return redirect("campaigns:detail", campaign.pk)
    form = CampaignForm(
        request.POST or None,
        workspace=request.member.workspace,
        editing=True,
        initial=CampaignForm.initial_for(campaign),
    )
    if request.method == "POST" and form.is_valid():
        arguments = form.service_arguments()
        try:
            services.campaign_update(campaign=campaign, **arguments)
        except services.CampaignError as error:
            form.add_error(_form_field(form, error.field), error.message)
        else:
            messages.success(request, "Draft saved.")
            return redirect("campaigns:detail", campaign.pk)
    return render(
        request,
        "campaigns/campaign_form.html",
        {"form": form, "editing": True, "campaign": campaign},
        status=400 if form.errors else 200,
    )


def _form_field(form, field: str | None) -> str | None:
    return field if field in form.fields else None


@require_GET
@member_required
def campaign_detail(request, campaign_id):
    campaign = get_campaign_for_member(request.member, campaign_id)
    context = {
        "campaign": campaign,
        "progress": selectors.campaign_progress(campaign=campaign),
        "lists": campaign.lists.all(),
        "exclude_lists": campaign.exclude_lists.all(),
        "schedule_form": ScheduleForm(),
    }
    if campaign.status == Campaign.Status.DRAFT:
        context["audience_count"] = selectors.campaign_audience_count(campaign=campaign)
        context["problems"] = services.campaign_send_problems(campaign=campaign)
    return render(request, "campaigns/campaign_detail.html", context)


@require_GET
@member_required
def campaign_progress(request, campaign_id):
    """The JSON the detail page's progress bar polls."""
    campaign = get_campaign_for_member(request.member, campaign_id)
    return JsonResponse(selectors.campaign_progress(campaign=campaign))


# Each action: (title, what the confirmation page says, button label).
ACTIONS = {
    "schedule": ("Send or schedule", "The campaign goes to its audience at the time you choose.", "Schedule"),
    "pause": ("Pause sending", "Messages not yet sent wait until you resume. Sent ones are not affected.", "Pause"),
    "resume": ("Resume sending", "Sending continues where it stopped.", "Resume"),
    "cancel": (
        "Cancel the campaign",
        "Messages not yet sent will never be sent. This cannot be undone.",
        "Cancel campaign",
    ),
    "unschedule": ("Back to draft", "The campaign will not be sent at its scheduled time.", "Back to draft"),
}


@require_http_methods(["GET", "POST"])
@member_required
def campaign_action(request, campaign_id, action):
    if action not in ACTIONS:
        raise Http404("No such action.")
    campaign = get_campaign_for_member(request.member, campaign_id, write=True)
    title, explanation, button = ACTIONS[action]
    form = ScheduleForm(request.POST or None) if action == "schedule" else None
    context = {"campaign": campaign, "action": action, "title": title, "explanation": explanation, "button": button}
    if action == "schedule":
        context["audience_count"] = selectors.campaign_audience_count(campaign=campaign)
        context["problems"] = services.campaign_send_problems(campaign=campaign)
    if request.method == "GET":
        context["form"] = (form or ScheduleForm()) if action == "schedule" else None
        return render(request, "campaigns/campaign_confirm.html", context)
    if form is not None and not form.is_valid():
        context["form"] = form
        return render(request, "campaigns/campaign_confirm.html", context, status=400)
    try:
        if action == "schedule":
            send_at = form.cleaned_data.get("send_at")
            services.campaign_schedule(campaign=campaign, send_at=send_at, actor=request.user)
            messages.success(request, "Scheduled." if send_at else "Sending has started.")
        elif action == "pause":
            services.campaign_pause(campaign=campaign, reason=f"Paused by {request.user.email}", actor=request.user)
            messages.success(request, "Paused. Batches in flight stop within seconds.")
        elif action == "resume":
            services.campaign_resume(campaign=campaign, actor=request.user)
            messages.success(request, "Sending resumed.")
        elif action == "cancel":
            services.campaign_cancel(campaign=campaign, actor=request.user)
            messages.success(request, "Cancelled. Nothing more will be sent.")
        elif action == "unschedule":
            services.campaign_unschedule(campaign=campaign)
            messages.success(request, "Back to draft.")
    except services.CampaignError as error:
        if action == "schedule":
            context["form"] = form
            context["error"] = error.message
            return render(request, "campaigns/campaign_confirm.html", context, status=400)
        messages.error(request, error.message)
    return redirect("campaigns:detail", campaign.pk)


@require_POST
@member_required
def campaign_duplicate(request, campaign_id):
    campaign = get_campaign_for_member(request.member, campaign_id, write=True)
    copy = services.campaign_duplicate(campaign=campaign, actor=request.user)
    messages.success(request, f"Duplicated as the draft “{copy.name}”.")
    return redirect("campaigns:detail", copy.pk)


@require_http_methods(["GET", "POST"])
@member_required
def campaign_delete(request, campaign_id):
    campaign = get_campaign_for_member(request.member, campaign_id, write=True)
    if request.method == "GET":
        return render(request, "campaigns/campaign_delete.html", {"campaign": campaign})
    try:
        services.campaign_delete(campaign=campaign)
    except services.CampaignError as error:
        messages.error(request, error.message)
        return redirect("campaigns:detail", campaign.pk)
    messages.success(request, f"Draft “{campaign.name}” deleted.")
    return redirect("campaigns:list")


# --- Relays ------------------------------------------------------------------------------------


@require_GET
@member_required
def relay_list(request):
    require_manage(request.member)
    relays = selectors.workspace_relays(workspace_id=request.member.workspace_id)
    return render(request, "campaigns/relay_list.html", {"relays": relays})


@require_http_methods(["GET", "POST"])
@member_required
def relay_create(request):
    require_manage(request.member)
    form = RelayForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        relay = services.relay_create(workspace=request.member.workspace, **form.cleaned_data)
        messages.success(request, f"Relay “{relay.name}” added. Use Test to check it.")
        return redirect("campaigns:relays")
    return render(request, "campaigns/relay_form.html", {"form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@member_required
def relay_edit(request, relay_id):
    relay = get_relay_for_member(request.member, relay_id, write=True)
    form = RelayForm(request.POST or None, instance=relay)
    if request.method == "POST" and form.is_valid():
        # The form wrote the fields on the instance; the service saves them (keeping the password if empty).
        fields = dict(form.cleaned_data)
        relay.refresh_from_db()
        services.relay_update(relay=relay, **fields)
        messages.success(request, "Relay saved.")
        return redirect("campaigns:relays")
    return render(
        request, "campaigns/relay_form.html", {"form": form, "relay": relay}, status=400 if form.errors else 200
    )


@require_POST
@member_required
def relay_test_view(request, relay_id):
    relay = get_relay_for_member(request.member, relay_id, write=True)
    ok, detail = relay_test(relay=relay)
    (messages.success if ok else messages.error)(request, f"{relay.name}: {detail}")
    return redirect("campaigns:relays")


@require_http_methods(["GET", "POST"])
@member_required
def relay_delete(request, relay_id):
    relay = get_relay_for_member(request.member, relay_id, write=True)
    if request.method == "GET":
        return render(request, "campaigns/relay_delete.html", {"relay": relay})
    services.relay_delete(relay=relay)
    messages.success(request, f"Relay “{relay.name}” deleted.")
    return redirect("campaigns:relays")


# Marketers' HTML runs in a sandbox of its own: no scripts, no forms, no access to this site's origin.
WEB_COPY_POLICY = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "img-src * data:; style-src 'unsafe-inline' *; font-src * data:"
)


@require_safe
def message_web_copy(request, token):
    """The "view in browser" page of a campaign message: public, reached by its signed delivery token."""
    rendered = sending.delivery_web_copy(token=token)
    if rendered is None:
        raise Http404("This message is not available.")
    response = HttpResponse(rendered.html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = WEB_COPY_POLICY
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
