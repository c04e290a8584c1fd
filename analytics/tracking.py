"""The fast path of the open pixel and the click redirect: token, link table, buffer. No session, no ORM.

A campaign's link table (its workspace and its literal links, in order) is immutable once the
campaign starts sending, so it is kept in-process (and in Redis for the other processes) and
read from Postgres once per process per campaign. A campaign that does not exist is remembered
briefly too, so a flood of forged-but-signed tokens cannot turn into a flood of queries.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import DatabaseError, connection

from analytics import buffer
from campaigns.lib.tracking import InvalidToken, read_delivery_token

LOCAL_SECONDS = 300
MISSING_SECONDS = 10
REDIS_SECONDS = 24 * 3600


@dataclass(frozen=True)
class LinkTable:
    workspace_id: int
    links: dict[int, str]  # position -> URL


_local: dict[int, tuple[float, LinkTable | None]] = {}
_local_lock = threading.Lock()


class NotFound(Exception):
    """The token or the position names nothing Herald sent."""


class Unavailable(Exception):
    """Neither Redis nor Postgres could say what the link is."""


def link_table(campaign_id: int) -> LinkTable | None:
    now = time.monotonic()
    hit = _local.get(campaign_id)
    if hit and hit[0] > now:
        return hit[1]
    key = f"analytics:links:{campaign_id}"
    table = cache.get(key)  # errors are ignored by the cache (a miss)
    if table is None:
        try:
            table = _load(campaign_id)
        except Unavailable:
            if hit and hit[1] is not None:
                return hit[1]  # links never change once sent: a stale copy is still right
            raise
        if table is not None:
            cache.set(key, table, REDIS_SECONDS)
    ttl = LOCAL_SECONDS if table is not None else MISSING_SECONDS
    with _local_lock:
        if len(_local) > 10_000:
            _local.clear()
        _local[campaign_id] = (now + ttl, table)
    return table


def _load(campaign_id: int) -> LinkTable | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT workspace_id FROM campaigns_campaign WHERE id = %s", [campaign_id])
            found = cursor.fetchone()
            if found is None:
                return None
            cursor.execute("SELECT position, url FROM campaigns_campaignlink WHERE campaign_id = %s", [campaign_id])
            return LinkTable(workspace_id=found[0], links=dict(cursor.fetchall()))
    except DatabaseError as exc:
        raise Unavailable(str(exc)) from exc


def forget(campaign_id: int) -> None:
    """Drop a campaign's cached link table (its links were just written)."""
    _local.pop(campaign_id, None)
    cache.delete(f"analytics:links:{campaign_id}")


def _resolve(token: str):
    try:
        parsed = read_delivery_token(token)
    except InvalidToken:
        raise NotFound from None
    table = link_table(parsed.campaign_id)
    if table is None or table.workspace_id != parsed.workspace_id:
        raise NotFound
    return parsed, table


def _event(kind: str, parsed, *, position: int | None, user_agent: str, ip: str) -> dict:
    return {
        "uid": uuid.uuid4().hex,
        "type": kind,
        "w": parsed.workspace_id,
        "c": parsed.campaign_id,
        "d": parsed.delivery_id,
        "p": position,
        "ts": time.time(),
        "ua": user_agent[:300],
        "ip": ip,
    }


def track_open(token: str, *, user_agent: str, ip: str) -> str:
    """Record an open; returns where the event went. Raises NotFound."""
    parsed, _ = _resolve(token)
    return buffer.record(_event("opened", parsed, position=None, user_agent=user_agent, ip=ip))


def track_click(token: str, position: int, *, user_agent: str, ip: str) -> str:
    """Record a click; returns the campaign's URL at that position. Raises NotFound or Unavailable."""
    parsed, table = _resolve(token)
    url = table.links.get(position)
    # Only ever a web address the campaign itself contained: never an open redirect.
    if url is None or not url.lower().startswith(("http://", "https://")):
        raise NotFound
    buffer.record(_event("clicked", parsed, position=position, user_agent=user_agent, ip=ip))
    return url
