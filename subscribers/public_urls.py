"""Public, top-level URLs of the subscribers app (no namespace: emails and other sites link to them)."""

from django.urls import path

from subscribers import views_public

urlpatterns = [
    path("subscribe/<str:token>/", views_public.subscribe, name="subscribe"),
    path("confirm/<str:token>/", views_public.confirm, name="subscription_confirm"),
    path("u/<str:token>/", views_public.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/preferences/", views_public.preferences, name="unsubscribe_preferences"),
]
