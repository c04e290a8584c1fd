"""Where tracking events wait between the request and Postgres: a Redis stream, else a spool file.

The pixel and redirect views call `record()`, which appends the event to the `analytics:events`
stream (XADD, one round trip). When Redis does not answer, the event is written straight to
Postgres (`analytics.services.events_ingest`); when that fails too, it is appended to a local
spool file (ANALYTICS_SPOOL_DIR, one JSON line per event) and a background thread of the same
process pushes the spool back into the stream (or Postgres) every few seconds until it is
empty. Each event carries the uid drawn when the request arrived, so a copy that reaches
Postgres twice (stream and spool, a drain cut off before it trimmed) is stored once.

A short circuit breaker remembers a failed Redis or Postgres for a couple of seconds, so an
outage costs the first requests a timeout, not every request.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

STREAM = "herald:analytics:events"
BREAKER_SECONDS = 2.0

_down_until = {"redis": 0.0, "db": 0.0}
_flusher_lock = threading.Lock()
_flusher: threading.Thread | None = None


def redis_client():
    """The cache's own Redis connection (Sentinel-aware when REDIS_SENTINELS is set)."""
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _is_down(name: str) -> bool:
    return time.monotonic() < _down_until[name]


def _mark_down(name: str) -> None:
    _down_until[name] = time.monotonic() + BREAKER_SECONDS


def record(event: dict) -> str:
    """Keep one tracking event; returns where it went: "stream", "database" or "spool"."""
    if not _is_down("redis"):
        try:
            redis_client().xadd(STREAM, {"e": json.dumps(event, separators=(",", ":"))})
            return "stream"
        except (RedisError, OSError):
            _mark_down("redis")
            logger.warning("Redis unavailable for a tracking event; writing it to Postgres")
    if not _is_down("db"):
        try:
            from analytics.services import events_ingest

            events_ingest(events=[event])
            return "database"
        except DatabaseError:
            _mark_down("db")
            logger.warning("Postgres unavailable for a tracking event too; spooling it")
    spool_append([event])
    return "spool"


# --- the spool -------------------------------------------------------------------------


def spool_dir() -> Path:
    return Path(settings.ANALYTICS_SPOOL_DIR)


def _spool_file() -> Path:
    return spool_dir() / f"events-{os.uname().nodename}-{os.getpid()}.jsonl"


def spool_append(events: list[dict]) -> None:
    path = _spool_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        for event in events:
            handle.write(json.dumps(event, separators=(",", ":")) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    _ensure_flusher()


def spool_flush() -> int:
    """Move every spooled event into the stream (or Postgres); returns how many moved.

    A file is taken by renaming it, so two flushers never move the same lines, and deleted
    only once all its events are safely elsewhere; on failure it is put back for later.
    """
    moved = 0
    directory = spool_dir()
    if not directory.is_dir():
        return 0
    for path in sorted(directory.glob("events-*.jsonl")):
        claimed = path.with_suffix(f".flushing-{os.getpid()}")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            continue
        with open(claimed, encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # wait for a writer that opened it before the rename
            events = [json.loads(line) for line in handle if line.strip()]
        try:
            _push(events)
        except (RedisError, DatabaseError, OSError):
            spool_append(events)
            claimed.unlink()
            raise
        claimed.unlink()
        moved += len(events)
    return moved


def _push(events: list[dict]) -> None:
    try:
        pipe = redis_client().pipeline(transaction=False)
        for event in events:
            pipe.xadd(STREAM, {"e": json.dumps(event, separators=(",", ":"))})
        pipe.execute()
    except (RedisError, OSError):
        from analytics.services import events_ingest

        events_ingest(events=events)


def _ensure_flusher() -> None:
    global _flusher
    with _flusher_lock:
        if _flusher is not None and _flusher.is_alive():
            return
        _flusher = threading.Thread(target=_flush_loop, name="analytics-spool-flusher", daemon=True)
        _flusher.start()


def _flush_loop() -> None:
    from django.db import connections

    while True:
        time.sleep(settings.ANALYTICS_SPOOL_RETRY_SECONDS)
        try:
            spool_flush()
        except (RedisError, DatabaseError, OSError):
            continue
        finally:
            connections.close_all()  # this thread's own connections: none is left open between tries
        if not any(spool_dir().glob("events-*.jsonl")):
            return


# --- reading the stream (the drain) --------------------------------------------------


def stream_read(count: int) -> list[tuple[str, dict]]:
    """The oldest `count` events of the stream, with their stream ids."""
    entries = redis_client().xrange(STREAM, count=count)
    out = []
    for stream_id, fields in entries:
        raw = fields.get(b"e") or fields.get("e")
        try:
            out.append((stream_id.decode() if isinstance(stream_id, bytes) else stream_id, json.loads(raw)))
        except (TypeError, ValueError):
            logger.error("Dropping an unreadable tracking event %s", stream_id)
            out.append((stream_id.decode() if isinstance(stream_id, bytes) else stream_id, {}))
    return out


def stream_delete(ids: list[str]) -> None:
    if ids:
        redis_client().xdel(STREAM, *ids)


def stream_length() -> int:
    return int(redis_client().xlen(STREAM))
