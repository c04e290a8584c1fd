"""URLs of the analytics section (the workspace dashboard itself is the site's root, see config/urls.py)."""

from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("compare/", views.compare, name="compare"),
    path("campaigns/<int:campaign_id>/", views.campaign_report, name="campaign"),
    path("campaigns/<int:campaign_id>/recipients/<slug:outcome>/", views.recipients, name="recipients"),
    path("campaigns/<int:campaign_id>/recipients/<slug:outcome>.csv", views.recipients_export, name="export"),
]
