"""WSGI entry point for gunicorn (see config/gunicorn.conf.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Opens and clicks are answered before Django's middleware (analytics/wsgi.py explains why).
from analytics.wsgi import TrackingFastPath  # noqa: E402 - needs the settings configured above

application = TrackingFastPath(application)
