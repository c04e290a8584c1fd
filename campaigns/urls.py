"""URLs of the campaigns and templates sections."""

from django.urls import path

from campaigns import views, views_senders, views_templates

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_create, name="create"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/edit/", views.campaign_edit, name="edit"),
    path("<int:campaign_id>/progress.json", views.campaign_progress, name="progress"),
    path("<int:campaign_id>/duplicate/", views.campaign_duplicate, name="duplicate"),
    path("<int:campaign_id>/delete/", views.campaign_delete, name="delete"),
    path("<int:campaign_id>/<slug:action>/", views.campaign_action, name="action"),
    path("relays/", views.relay_list, name="relays"),
    path("relays/new/", views.relay_create, name="relay_create"),
    path("relays/<int:relay_id>/", views.relay_edit, name="relay_edit"),
    path("relays/<int:relay_id>/test/", views.relay_test_view, name="relay_test"),
    path("relays/<int:relay_id>/delete/", views.relay_delete, name="relay_delete"),
    path("templates/", views_templates.template_list, name="templates"),
    path("templates/new/", views_templates.template_create, name="template_create"),
    path("templates/preview.json", views_templates.template_preview, name="template_preview"),
    path("templates/<int:template_id>/", views_templates.template_edit, name="template_edit"),
    path("templates/<int:template_id>/delete/", views_templates.template_delete, name="template_delete"),
    path("templates/<int:template_id>/test/", views_templates.template_send_test, name="template_send_test"),
    path("senders/", views_senders.sender_list, name="senders"),
    path("senders/<int:sender_id>/resend/", views_senders.sender_resend, name="sender_resend"),
    path("senders/<int:sender_id>/delete/", views_senders.sender_delete, name="sender_delete"),
    path("senders/confirm/<str:token>/", views_senders.sender_confirm, name="sender_confirm"),
    path("domains/", views_senders.domain_list, name="domains"),
    path("domains/<int:domain_id>/", views_senders.domain_detail, name="domain_detail"),
    path("domains/<int:domain_id>/check/", views_senders.domain_check, name="domain_check"),
    path("domains/<int:domain_id>/dkim/", views_senders.domain_dkim, name="domain_dkim"),
    path("domains/<int:domain_id>/delete/", views_senders.domain_delete, name="domain_delete"),
]
