"""Health endpoints at the root (load balancers find them without configuration), the public
status page, and the operators' incident pages."""

from django.urls import path

from operations import views, views_status

app_name = "operations"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("health", views.health_detail, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("status/", views_status.status_page, name="status"),
    path("status.json", views_status.status_json, name="status_json"),
    path("status/subscribe/", views_status.status_subscribe, name="status_subscribe"),
    path("status/confirm/<str:token>/", views_status.status_confirm, name="status_confirm"),
    path("status/unsubscribe/<str:token>/", views_status.status_unsubscribe, name="status_unsubscribe"),
    path("operations/slos/", views_status.slo_overview, name="slos"),
    path("operations/incidents/", views_status.incident_list, name="incident_list"),
    path("operations/incidents/<int:incident_id>/", views_status.incident_detail, name="incident_detail"),
]
