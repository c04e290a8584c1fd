"""The campaigns and templates sections of the dashboard."""

from django.shortcuts import render

from accounts.decorators import member_required


@member_required
def campaign_list(request):
    return render(request, "campaigns/list.html")


@member_required
def template_list(request):
    return render(request, "campaigns/template_list.html")
