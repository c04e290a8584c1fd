"""Top-level URL map: the dashboard, accounts, the admin and the health endpoints."""

from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views

urlpatterns = [
    path("", account_views.dashboard, name="dashboard"),
    path("accounts/", include("accounts.urls")),
    path("subscribers/", include("subscribers.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("analytics/", include("analytics.urls")),
    path("admin/", admin.site.urls),
    path("", include("operations.urls")),
]

# Database outages answer with a clear "temporarily unavailable" page instead of a 500.
handler500 = "operations.views.server_error"
