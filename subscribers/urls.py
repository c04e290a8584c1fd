"""URLs of the subscribers section."""

from django.urls import path

from subscribers import views, views_imports

app_name = "subscribers"

urlpatterns = [path("", views.subscriber_list, name="list")]

# Imports (subscribers/views_imports.py).
urlpatterns += [
    path("imports/", views_imports.import_list, name="imports"),
    path("imports/new/", views_imports.import_new, name="import_new"),
    path("imports/<int:import_id>/", views_imports.import_detail, name="import_detail"),
    path("imports/<int:import_id>/mapping/", views_imports.import_mapping, name="import_mapping"),
    path("imports/<int:import_id>/progress.json", views_imports.import_progress_json, name="import_progress"),
    path("imports/<int:import_id>/cancel/", views_imports.import_cancel_view, name="import_cancel"),
    path("imports/<int:import_id>/errors.csv", views_imports.import_error_report, name="import_errors"),
]
