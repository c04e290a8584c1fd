"""The subscribers section of the dashboard."""

from django.shortcuts import render

from accounts.decorators import member_required


@member_required
def subscriber_list(request):
    return render(request, "subscribers/list.html")
