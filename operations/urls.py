"""Health endpoints, at the root so load balancers and probes find them without configuration."""

from django.urls import path

from operations import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("health", views.health_detail, name="health"),
]
