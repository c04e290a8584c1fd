"""URLs of the subscribers section of the dashboard (the public pages are in public_urls.py)."""

from django.urls import path

from subscribers import views, views_imports

app_name = "subscribers"

urlpatterns = [
    path("", views.subscriber_list, name="list"),
    path("new/", views.subscriber_create_view, name="create"),
    path("bulk/", views.subscriber_bulk, name="bulk"),
    path("<int:subscriber_id>/", views.subscriber_detail, name="detail"),
    path("<int:subscriber_id>/edit/", views.subscriber_edit, name="edit"),
    path("<int:subscriber_id>/delete/", views.subscriber_delete_view, name="delete"),
    path("<int:subscriber_id>/erase/", views.subscriber_erase_view, name="erase"),
    path("<int:subscriber_id>/export/", views.subscriber_export_view, name="export"),
    path("<int:subscriber_id>/unsubscribe/", views.subscriber_unsubscribe_view, name="unsubscribe"),
    path("<int:subscriber_id>/lists/", views.membership_add_view, name="membership_add"),
    path("<int:subscriber_id>/lists/<int:list_id>/remove/", views.membership_remove_view, name="membership_remove"),
    path("lists/", views.list_index, name="lists"),
    path("lists/new/", views.list_create_view, name="list_create"),
    path("lists/<int:list_id>/", views.list_detail, name="list_detail"),
    path("lists/<int:list_id>/edit/", views.list_edit, name="list_edit"),
    path("lists/<int:list_id>/delete/", views.list_delete_view, name="list_delete"),
    path("segments/", views.segment_index, name="segments"),
    path("segments/new/", views.segment_create_view, name="segment_create"),
    path("segments/count/", views.segment_count_view, name="segment_count"),
    path("segments/<int:segment_id>/", views.segment_edit, name="segment_edit"),
    path("segments/<int:segment_id>/delete/", views.segment_delete_view, name="segment_delete"),
    path("suppressions/", views.suppression_index, name="suppressions"),
    path("suppressions/add/", views.suppression_add_view, name="suppression_add"),
    path("suppressions/<int:suppression_id>/remove/", views.suppression_remove_view, name="suppression_remove"),
]

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
