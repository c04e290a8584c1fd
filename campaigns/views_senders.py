"""Senders and sending domains: From addresses confirmed by email, DNS records to publish, DKIM keys.

The domains page also shows owners and admins the workspace's bounce webhook address and secret.
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import require_write
from accounts.decorators import member_required
from campaigns import senders
from campaigns.access import get_sender_for_member, get_sending_domain_for_member
from campaigns.bounces import workspace_webhook_secret
from campaigns.models import Sender, SendingDomain


class SenderForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    name = forms.CharField(label="Name shown to recipients", max_length=200, required=False)


class DomainForm(forms.Form):
    domain = forms.CharField(label="Domain", max_length=253, help_text="The part after @ in your From addresses.")


# --- Senders -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@member_required
def sender_list(request):
    member = request.member
    form = SenderForm(request.POST or None)
    if request.method == "POST":
        require_write(member)
        if form.is_valid():
            try:
                sender, mail_problem = senders.sender_create(
                    workspace=member.workspace,
                    email=form.cleaned_data["email"],
                    name=form.cleaned_data["name"],
                    actor=request.user,
                )
            except senders.SenderError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                if mail_problem:
                    messages.warning(request, f"{sender.email} was added, but {mail_problem}")
                else:
                    messages.success(
                        request, f"We sent a confirmation link to {sender.email}. It can be used once confirmed."
                    )
                return redirect("campaigns:senders")
    rows = Sender.objects.filter(workspace_id=member.workspace_id).order_by("email")
    return render(
        request,
        "campaigns/sender_list.html",
        {"senders": rows, "form": form},
        status=400 if form.errors else 200,
    )


@require_POST
@member_required
def sender_resend(request, sender_id):
    sender = get_sender_for_member(request.member, sender_id, write=True)
    try:
        senders.sender_send_verification(sender=sender)
    except senders.SenderError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"A new confirmation link is on its way to {sender.email}.")
    return redirect("campaigns:senders")


@require_http_methods(["GET", "POST"])
@member_required
def sender_delete(request, sender_id):
    sender = get_sender_for_member(request.member, sender_id, write=True)
    in_use = sender.campaigns.count()
    if request.method == "GET":
        return render(request, "campaigns/sender_delete.html", {"sender": sender, "in_use": in_use})
    try:
        senders.sender_delete(sender=sender)
    except senders.SenderError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{sender.email} is no longer a sender.")
    return redirect("campaigns:senders")


@require_http_methods(["GET", "POST"])
def sender_confirm(request, token):
    """The link in the confirmation email; public, since the mailbox's owner may have no account.

    GET only shows a button: mail scanners that follow links must not confirm an address.
    """
    try:
        sender = senders.sender_for_token(token)
    except senders.SenderError as error:
        return render(request, "campaigns/sender_confirm.html", {"error": error.message}, status=400)
    if request.method == "POST":
        sender = senders.sender_confirm(token=token)
        return render(request, "campaigns/sender_confirm.html", {"sender": sender, "confirmed": True})
    return render(request, "campaigns/sender_confirm.html", {"sender": sender})


# --- Sending domains ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@member_required
def domain_list(request):
    member = request.member
    form = DomainForm(request.POST or None)
    if request.method == "POST":
        require_write(member)
        if form.is_valid():
            try:
                domain = senders.domain_create(workspace=member.workspace, domain=form.cleaned_data["domain"])
            except senders.SenderError as error:
                form.add_error("domain", error.message)
            else:
                messages.success(request, f"{domain.domain} added with a new DKIM key: publish the records below.")
                return redirect("campaigns:domain_detail", domain.pk)
    domains = SendingDomain.objects.filter(workspace_id=member.workspace_id).order_by("domain")
    context = {"domains": domains, "form": form}
    if member.can_manage:
        context["webhook_url"] = settings.SITE_URL + reverse("webhooks:workspace_bounces", args=[member.workspace_id])
        context["webhook_secret"] = workspace_webhook_secret(member.workspace_id)
    return render(request, "campaigns/sender_domains.html", context, status=400 if form.errors else 200)


@require_GET
@member_required
def domain_detail(request, domain_id):
    domain = get_sending_domain_for_member(request.member, domain_id)
    records = senders.domain_dns_records(sending_domain=domain)
    checks = domain.last_check_result or {}
    rows = [(record, checks.get(record.purpose)) for record in records]
    return render(request, "campaigns/sender_domain_detail.html", {"domain": domain, "rows": rows})


@require_POST
@member_required
def domain_check(request, domain_id):
    domain = get_sending_domain_for_member(request.member, domain_id, write=True)
    found = senders.domain_check(sending_domain=domain)
    if domain.verified_at:
        messages.success(request, f"The DKIM record of {domain.domain} is in place: campaigns from it are signed.")
    else:
        missing = ", ".join(purpose for purpose, result in found.items() if not result["ok"])
        messages.warning(request, f"Not found in DNS yet: {missing}. Changes can take a while to appear.")
    return redirect("campaigns:domain_detail", domain.pk)


@require_http_methods(["GET", "POST"])
@member_required
def domain_dkim(request, domain_id):
    domain = get_sending_domain_for_member(request.member, domain_id, write=True)
    if request.method == "GET":
        return render(request, "campaigns/sender_domain_dkim.html", {"domain": domain})
    senders.domain_generate_dkim_key(sending_domain=domain)
    messages.success(request, "New DKIM key generated: publish the new DKIM record, then check the DNS again.")
    return redirect("campaigns:domain_detail", domain.pk)


@require_http_methods(["GET", "POST"])
@member_required
def domain_delete(request, domain_id):
    domain = get_sending_domain_for_member(request.member, domain_id, write=True)
    if request.method == "GET":
        return render(request, "campaigns/sender_domain_delete.html", {"domain": domain})
    senders.domain_delete(sending_domain=domain)
    messages.success(request, f"{domain.domain} removed; campaigns from it are no longer DKIM-signed.")
    return redirect("campaigns:domains")
