"""URLs under /webhooks/: bounce and complaint events from ESPs and from workspaces' own systems."""

from django.urls import path

from campaigns import webhooks

app_name = "webhooks"

urlpatterns = [
    path("esp/<slug:provider>/tracking/", webhooks.esp_tracking, name="esp_tracking"),
    path("bounces/<int:workspace_id>/", webhooks.workspace_bounces, name="workspace_bounces"),
]
