"""Django admin of the subscribers app."""

from subscribers import admin_imports  # noqa: F401 (registers the imports' admin)
