"""Whether this web node is draining: about to stop, so the load balancer should send it nothing new."""

import os
import threading

from django.conf import settings

_draining = threading.Event()


def begin_draining() -> None:
    """Called when a graceful shutdown starts (see config/gunicorn.conf.py)."""
    _draining.set()


def stop_draining() -> None:
    _draining.clear()


def is_draining() -> bool:
    return _draining.is_set() or bool(settings.DRAIN_FILE and os.path.exists(settings.DRAIN_FILE))
