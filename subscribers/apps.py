"""App configuration for subscribers."""

from django.apps import AppConfig


class SubscribersConfig(AppConfig):
    name = "subscribers"
