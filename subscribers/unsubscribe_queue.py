"""Where unsubscribes wait while the database cannot take them: a Redis list, then a local spool.

A web node that cannot write an unsubscribe to Postgres pushes it onto a Redis list; if Redis is
unreachable too, it appends it as one JSON line to a spool file under UNSUBSCRIBE_SPOOL_DIR
(fsynced before the person is told it worked). `drain()` applies both, oldest first, and removes
an entry only once it has been applied, so a crash or a new outage mid-way loses nothing
(applying one twice is harmless: unsubscribing is idempotent).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

QUEUE_KEY = "herald:subscribers:unsubscribe-queue"
# Entries that can never be applied (malformed) are kept here for a person to look at, not dropped.
REJECTED_KEY = "herald:subscribers:unsubscribe-rejected"
DRAIN_LOCK_KEY = "herald:subscribers:unsubscribe-drain"
SPOOL_NAME = "unsubscribes.jsonl"


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def spool_dir() -> Path:
    return Path(settings.UNSUBSCRIBE_SPOOL_DIR)


def enqueue(entry: dict) -> str:
    """Keep the entry for later: "queued" (Redis) or "spooled" (local file). Raises only if both fail."""
    line = json.dumps(entry, sort_keys=True)
    try:
        _redis().rpush(QUEUE_KEY, line)
        return "queued"
    except (RedisError, OSError):
        logger.warning("Redis unavailable for a queued unsubscribe; spooling it to disk", exc_info=True)
    spool_append(line)
    return "spooled"


def spool_append(line: str) -> None:
    """Append one line to the spool file, durably, even while a drain is renaming it away."""
    directory = spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SPOOL_NAME
    for _ in range(50):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A drain may have renamed the file between our open and our lock: write to the new one.
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(fd).st_ino:
                continue
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
            return
        finally:
            os.close(fd)
    raise OSError(f"Could not append to {path}")


@dataclass
class DrainResult:
    applied: int = 0
    rejected: int = 0
    remaining: int = 0


def pending_count() -> int:
    """Unsubscribes waiting in Redis and in this node's spool (for health pages and tests)."""
    count = 0
    with contextlib.suppress(RedisError, OSError):
        count += int(_redis().llen(QUEUE_KEY))
    directory = spool_dir()
    if directory.exists():
        for path in [*directory.glob(SPOOL_NAME), *directory.glob("unsubscribes.*.draining")]:
            with contextlib.suppress(OSError):
                count += sum(1 for line in path.read_text().splitlines() if line.strip())
    return count


def drain(*, limit: int = 5000) -> DrainResult:
    """Apply queued unsubscribes (spool first, then Redis) until done, `limit`, or the database fails."""
    result = DrainResult()
    try:
        _drain_spool(result, limit)
        _drain_redis(result, limit)
    except DatabaseError:
        # Still down: everything not applied stays where it was, for the next run.
        logger.warning("Database still unavailable; %s queued unsubscribes applied so far", result.applied)
    result.remaining = pending_count()
    return result


def _apply(raw: str, result: DrainResult) -> bool:
    """Apply one entry; False if it is malformed (the caller sets it aside). DatabaseError propagates."""
    from subscribers.services import unsubscribe_apply

    try:
        entry = json.loads(raw)
        int(entry["workspace_id"]), int(entry["subscriber_id"])
    except (ValueError, KeyError, TypeError):
        logger.error("A queued unsubscribe could not be read and was set aside: %r", raw[:500])
        result.rejected += 1
        return False
    unsubscribe_apply(entry=entry)
    result.applied += 1
    return True


def _drain_redis(result: DrainResult, limit: int) -> None:
    try:
        redis = _redis()
        lock = redis.lock(DRAIN_LOCK_KEY, timeout=300, blocking=False)
        if not lock.acquire(blocking=False):
            return  # another drain is at it
    except (RedisError, OSError):
        return
    try:
        while result.applied + result.rejected < limit:
            raw = redis.lindex(QUEUE_KEY, 0)
            if raw is None:
                return
            raw = raw.decode() if isinstance(raw, bytes) else raw
            if not _apply(raw, result):
                redis.rpush(REJECTED_KEY, raw)
            # Only the lock holder pops, and producers only append: the head is the entry just applied.
            redis.lpop(QUEUE_KEY)
    except (RedisError, OSError):
        logger.warning("Redis went away while draining unsubscribes; the rest wait", exc_info=True)
    finally:
        with contextlib.suppress(RedisError, OSError):
            lock.release()


def _drain_spool(result: DrainResult, limit: int) -> None:
    directory = spool_dir()
    if not directory.exists():
        return
    with open(directory / ".drain.lock", "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another drain on this machine is at it
        live = directory / SPOOL_NAME
        if live.exists():
            live.rename(directory / f"unsubscribes.{time.time_ns()}.draining")
        # Files left by a drain that died are picked up too (we hold the lock: nobody else drains).
        for path in sorted(directory.glob("unsubscribes.*.draining")):
            _drain_spool_file(path, result, limit)


def _drain_spool_file(path: Path, result: DrainResult, limit: int) -> None:
    with open(path, "r+") as spool:
        # Waits for a writer that opened the file before it was renamed to finish its line.
        fcntl.flock(spool, fcntl.LOCK_EX)
        lines = [line for line in spool.read().splitlines() if line.strip()]
        done = 0
        try:
            for line in lines:
                if result.applied + result.rejected >= limit:
                    break
                if not _apply(line, result):
                    with open(path.with_suffix(".rejected"), "a") as rejected:
                        rejected.write(line + "\n")
                done += 1
        finally:
            rest = lines[done:]
            if rest:
                # Keep what was not applied, in place, before letting go of the file.
                spool.seek(0)
                spool.truncate()
                spool.write("".join(line + "\n" for line in rest))
                spool.flush()
                os.fsync(spool.fileno())
    if not rest:
        path.unlink()
