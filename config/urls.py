"""Top-level URL map: the dashboard, accounts, the admin, the JSON API and the health endpoints."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from ninja import NinjaAPI

from accounts import api as accounts_api
from analytics import api as analytics_api
from analytics import tracking_views
from analytics import views as analytics_views
from campaigns import api as campaigns_api
from campaigns import views as campaign_views
from subscribers import api_imports as subscribers_api_imports
from subscribers.api import router as subscribers_router

# One API for the platform, assembled from each app's router; keys and throttling in accounts/api.py.
api = NinjaAPI(
    title="Herald API",
    version="1",
    description="Herald's JSON API. Authenticate with `Authorization: Bearer <API key>` (Settings → API keys).",
    auth=accounts_api.ApiKeyAuth(),
    throttle=[accounts_api.ApiKeyRateThrottle(settings.API_RATE_LIMIT)],
    urls_namespace="api",
)
api.add_router("/", accounts_api.router)
api.add_router("/", subscribers_router)
api.add_router("/imports", subscribers_api_imports.router)
api.add_router("/", campaigns_api.router)
api.add_router("/", analytics_api.router)

urlpatterns = [
    # The dashboard shows analytics figures, so analytics serves it (accounts never imports analytics).
    path("", analytics_views.dashboard, name="dashboard"),
    path("t/o/<str:token>.gif", tracking_views.open_pixel, name="track_open"),
    path("t/c/<str:token>/<int:position>", tracking_views.click_redirect, name="track_click"),
    path("t/v/<str:token>", campaign_views.message_web_copy, name="message_web_copy"),
    path("accounts/", include("accounts.urls")),
    path("subscribers/", include("subscribers.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("webhooks/", include("campaigns.webhook_urls")),
    path("analytics/", include("analytics.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # Public subscribe, confirm, unsubscribe and preferences pages (linked from email and other sites).
    path("", include("subscribers.public_urls")),
    path("", include("operations.urls")),
]

# Database outages answer with a clear "temporarily unavailable" page instead of a 500.
handler500 = "operations.views.server_error"
