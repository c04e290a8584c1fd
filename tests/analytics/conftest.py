"""Fixtures of the analytics tests: an empty tracking stream and link cache for each test."""

import pytest

from analytics import buffer, tracking


@pytest.fixture(autouse=True)
def _empty_buffers(settings, tmp_path):
    settings.ANALYTICS_SPOOL_DIR = tmp_path / "spool"
    settings.ANALYTICS_SCANNER_SECONDS = 2.0
    tracking._local.clear()
    buffer._down_until.update(redis=0.0, db=0.0)
    buffer.redis_client().delete(buffer.STREAM)
    yield
    tracking._local.clear()
    buffer._down_until.update(redis=0.0, db=0.0)
