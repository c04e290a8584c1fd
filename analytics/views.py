"""The analytics section of the dashboard."""

from django.shortcuts import render

from accounts.decorators import member_required


@member_required
def overview(request):
    return render(request, "analytics/overview.html")
