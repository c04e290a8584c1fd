"""The templates section: list, create, edit with a live preview, delete, and send a test email.

Content is checked when saved (syntax, unknown fields, anything outside the sandbox), with each
message next to its field; the preview endpoint renders unsaved content for a chosen subscriber.
"""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import require_write
from accounts.decorators import member_required
from campaigns import previews, services
from campaigns.access import get_template_for_member
from campaigns.lib.rendering import MERGE_FIELDS, TemplateProblem
from campaigns.models import Template
from subscribers.models import Subscriber

PAGE_SIZE = 25
MAX_CONTENT_CHARS = 1_000_000


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=120)
    subject = forms.CharField(max_length=500, help_text="Merge tags work here too: {{ subscriber.first_name }}")
    preheader = forms.CharField(
        max_length=500, required=False, help_text="The line inbox lists show after the subject."
    )
    html = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        required=False,
        label="HTML body",
        max_length=MAX_CONTENT_CHARS,
    )
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "code"}),
        required=False,
        label="Text body",
        help_text="Leave empty to make it from the HTML.",
        max_length=MAX_CONTENT_CHARS,
    )

    def __init__(self, *args, workspace_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace_id = workspace_id

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        for problem in previews.template_problems(
            workspace_id=self.workspace_id,
            subject=cleaned.get("subject", ""),
            preheader=cleaned.get("preheader", ""),
            html=cleaned.get("html", ""),
            text=cleaned.get("text", ""),
        ):
            self.add_error(problem.field if problem.field in self.fields else None, str(problem))
        return cleaned

    @staticmethod
    def initial_for(template: Template) -> dict:
        return {field: getattr(template, field) for field in ("name", "subject", "preheader", "html", "text")}


class TestSendForm(forms.Form):
    to = forms.EmailField(label="Send a test to")
    subscriber = forms.EmailField(required=False, label="Rendered for subscriber")


def _editor_context(request, form, template=None, test_form=None) -> dict:
    workspace_id = request.member.workspace_id
    recent = list(
        Subscriber.objects.filter(workspace_id=workspace_id).order_by("-id").values_list("email", flat=True)[:20]
    )
    return {
        "form": form,
        "template": template,
        "merge_fields": MERGE_FIELDS.items(),
        "recent_subscribers": recent,
        "test_form": test_form or TestSendForm(initial={"to": request.user.email}),
    }


@require_GET
@member_required
def template_list(request):
    templates = Template.objects.filter(workspace_id=request.member.workspace_id).order_by("name", "id")
    page = Paginator(templates.only("id", "name", "subject", "updated_at"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "campaigns/template_list.html", {"page": page})


@require_http_methods(["GET", "POST"])
@member_required
def template_create(request):
    member = request.member
    require_write(member)
    form = TemplateForm(request.POST or None, workspace_id=member.workspace_id)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.template_create(workspace=member.workspace, actor=request.user, **form.cleaned_data)
        except services.CampaignError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"Template “{template.name}” saved.")
            return redirect("campaigns:template_edit", template.pk)
    return render(
        request, "campaigns/template_form.html", _editor_context(request, form), status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
@member_required
def template_edit(request, template_id):
    # Anyone in the workspace may look at a template (read-only for viewers); saving needs write.
    template = get_template_for_member(request.member, template_id, write=request.method == "POST")
    form = TemplateForm(
        request.POST or None, workspace_id=request.member.workspace_id, initial=TemplateForm.initial_for(template)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.template_update(template=template, **form.cleaned_data)
        except services.CampaignError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, "Template saved.")
            return redirect("campaigns:template_edit", template.pk)
    return render(
        request,
        "campaigns/template_form.html",
        _editor_context(request, form, template),
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@member_required
def template_delete(request, template_id):
    template = get_template_for_member(request.member, template_id, write=True)
    if request.method == "GET":
        in_use = template.campaigns.count()
        return render(request, "campaigns/template_delete.html", {"template": template, "in_use": in_use})
    name = template.name
    services.template_delete(template=template)
    messages.success(request, f"Template “{name}” deleted.")
    return redirect("campaigns:templates")


@require_POST
@member_required
def template_preview(request):
    """JSON for the editor's live preview: the posted (unsaved) content rendered for a subscriber.

    A read: viewers may preview too. Errors come back per field, as the save would report them.
    """
    data = request.POST
    content = {field: data.get(field, "") for field in ("subject", "preheader", "html", "text")}
    if any(len(value) > MAX_CONTENT_CHARS for value in content.values()):
        return JsonResponse({"ok": False, "errors": {"html": "The content is longer than a million characters."}})
    try:
        preview = previews.template_preview(
            workspace_id=request.member.workspace_id,
            subscriber_email=data.get("subscriber", ""),
            campaign_name=data.get("name", "") or "Preview",
            cached=True,
            **content,
        )
    except TemplateProblem as problem:
        problems = previews.template_problems(workspace_id=request.member.workspace_id, cached=True, **content)
        problems = problems or [problem]
        return JsonResponse({"ok": False, "errors": {p.field or "html": str(p) for p in reversed(problems)}})
    except previews.PreviewError as error:
        return JsonResponse({"ok": False, "errors": {error.field or "html": error.message}})
    rendered = preview.rendered
    return JsonResponse(
        {
            "ok": True,
            "subject": rendered.subject,
            "preheader": rendered.preheader,
            "html": rendered.html,
            "text": rendered.text,
            "subscriber": preview.subscriber_email,
            "sample": preview.sample,
        }
    )


@require_POST
@member_required
def template_send_test(request, template_id):
    template = get_template_for_member(request.member, template_id, write=True)
    test_form = TestSendForm(request.POST)
    if test_form.is_valid():
        try:
            via = previews.template_send_test(
                template=template,
                member=request.member,
                to_email=test_form.cleaned_data["to"],
                subscriber_email=test_form.cleaned_data["subscriber"] or "",
            )
        except TemplateProblem as problem:
            test_form.add_error(None, f"The saved template cannot be sent: {problem}")
        except previews.PreviewError as error:
            test_form.add_error(error.field if error.field in test_form.fields else None, error.message)
        else:
            messages.success(request, f"Test email sent to {test_form.cleaned_data['to']} through {via}.")
            return redirect("campaigns:template_edit", template.pk)
    form = TemplateForm(workspace_id=request.member.workspace_id, initial=TemplateForm.initial_for(template))
    return render(
        request, "campaigns/template_form.html", _editor_context(request, form, template, test_form), status=400
    )
