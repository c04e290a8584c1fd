"""Writes of the analytics app: events in, rollups moved with them, the ledger and audience read in.

Every path into the events table goes through `_ingest_rows`: one INSERT ... ON CONFLICT (uid)
DO NOTHING RETURNING, then the rollups are moved for the rows that came back (the new ones)
in the same transaction. Ingesting the same events twice (a re-drained stream, a spool file
replayed, a ledger row read again) therefore changes nothing the second time. Ingestion holds
a transaction-level advisory lock, so uniqueness decisions (first open, first click of a
link) are never raced by a concurrent drain.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics.lib.useragents import classify
from analytics.models import Cursor, Event

INGEST_LOCK = 74_221_001
LEDGER_NAMESPACE = uuid.UUID("6c0f6a52-3f0e-4d53-9a57-3f3e6b7c2a10")
ENHANCED_CODE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
REASONS = {
    "5.1.1": "Mailbox does not exist",
    "5.1.2": "Domain does not exist",
    "5.1.10": "Recipient address has null MX",
    "5.2.1": "Mailbox disabled",
    "5.2.2": "Mailbox full",
    "5.3.4": "Message too big",
    "5.4.1": "Recipient address rejected",
    "5.7.1": "Rejected by policy",
    "5.7.26": "Failed authentication (DMARC)",
}
T = Event.Type


def ledger_uid(delivery_id: int, kind: str) -> str:
    return str(uuid.uuid5(LEDGER_NAMESPACE, f"{kind}:{delivery_id}"))


def outcome_reason(smtp_code: int | None, response: str) -> str:
    """A short, groupable reason for a bounce or failure: the enhanced status code and its meaning."""
    match = ENHANCED_CODE.search(response or "")
    if match:
        code = ".".join(match.groups())
        label = REASONS.get(code) or ("Temporary failure" if code.startswith("4") else "Permanent failure")
        return f"{code} {label}"
    if smtp_code:
        return f"{smtp_code} {'Temporary failure' if 400 <= smtp_code < 500 else 'Permanent failure'}"
    return "Unknown reason"


# --- tracking events -----------------------------------------------------------------


def events_ingest(*, events: list[dict]) -> int:
    """Store tracking events (opens, clicks) as buffered by the web nodes; returns how many were new.

    The delivery each names must exist in the token's campaign and workspace (a deleted campaign's
    late clicks are dropped). Scanner rules that need the ledger are applied here: an open or
    click within ANALYTICS_SCANNER_SECONDS of the message being sent, and two different links of
    one message clicked within one second, are flagged as bots.
    """
    events = [e for e in events if e.get("uid") and e.get("type") in (T.OPENED, T.CLICKED)]
    if not events:
        return 0
    with transaction.atomic():
        _lock()
        deliveries = _deliveries(sorted({int(e["d"]) for e in events}))
        rows = []
        for event in events:
            found = deliveries.get(int(event["d"]))
            if found is None or found[0] != int(event["c"]) or found[1] != int(event["w"]):
                continue
            agent = classify(event.get("ua") or "", event.get("ip") or "")
            occurred_at = datetime.fromtimestamp(float(event["ts"]), tz=UTC)
            is_bot, reason = agent.is_bot, agent.bot_reason
            sent_at = found[3]
            if not is_bot and sent_at and occurred_at - sent_at < timedelta(seconds=settings.ANALYTICS_SCANNER_SECONDS):
                is_bot, reason = True, "too_soon_after_delivery"
            rows.append(
                {
                    "uid": event["uid"],
                    "workspace_id": found[1],
                    "campaign_id": found[0],
                    "delivery_id": int(event["d"]),
                    "subscriber_id": found[2],
                    "type": event["type"],
                    "occurred_at": occurred_at,
                    "link_position": event.get("p"),
                    "is_bot": is_bot,
                    "bot_reason": reason,
                    "device": agent.device,
                    "client": agent.client,
                    "ip": event.get("ip") or None,
                    "user_agent": (event.get("ua") or "")[:300],
                    "detail": "",
                }
            )
        _flag_link_sweeps(rows)
        return len(_ingest_rows(rows))


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK])


def _deliveries(ids: list[int]) -> dict[int, tuple]:
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, campaign_id, workspace_id, subscriber_id, sent_at FROM campaigns_delivery WHERE id = ANY(%s)",
            [ids],
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _flag_link_sweeps(rows: list[dict]) -> None:
    """Two different links of one message clicked within a second: a scanner following every link."""
    clicks = [r for r in rows if r["type"] == T.CLICKED]
    if not clicks:
        return
    by_delivery: dict[int, list] = defaultdict(list)
    for row in clicks:
        by_delivery[row["delivery_id"]].append(row)
    earliest = min(r["occurred_at"] for r in clicks) - timedelta(seconds=1)
    # Earlier clicks of the same messages already stored (a sweep split across two drains).
    # The primary, explicitly: the router sends analytics reads to the standby, which may lag.
    for delivery_id, position, occurred_at in (
        Event.objects.using("default")
        .filter(delivery_id__in=list(by_delivery), type=T.CLICKED, occurred_at__gte=earliest)
        .values_list("delivery_id", "link_position", "occurred_at")
    ):
        by_delivery[delivery_id].append({"link_position": position, "occurred_at": occurred_at, "stored": True})
    window = timedelta(seconds=1)
    for group in by_delivery.values():
        if len({r["link_position"] for r in group}) < 2:
            continue
        group.sort(key=lambda r: r["occurred_at"])
        for row in group:
            if row.get("stored") or row["is_bot"]:
                continue
            near = {
                other["link_position"]
                for other in group
                if abs((other["occurred_at"] - row["occurred_at"]).total_seconds()) <= window.total_seconds()
            }
            if len(near) >= 2:
                row["is_bot"], row["bot_reason"] = True, "every_link_at_once"


# --- the core: insert new events, move the rollups -------------------------------------

EVENT_COLUMNS = (
    ("uid", "uuid"),
    ("workspace_id", "bigint"),
    ("campaign_id", "bigint"),
    ("delivery_id", "bigint"),
    ("subscriber_id", "bigint"),
    ("type", "varchar"),
    ("occurred_at", "timestamptz"),
    ("link_position", "integer"),
    ("is_bot", "boolean"),
    ("bot_reason", "varchar"),
    ("device", "varchar"),
    ("client", "varchar"),
    ("ip", "inet"),
    ("user_agent", "varchar"),
    ("detail", "varchar"),
)


def _ingest_rows(rows: list[dict]) -> list[dict]:
    """Insert events (inside the caller's transaction, under the lock); roll up the new ones."""
    if not rows:
        return []
    for row in rows:
        row["uid"] = str(uuid.UUID(str(row["uid"])))
    names = ", ".join(name for name, _ in EVENT_COLUMNS)
    unnest = ", ".join(f"%s::{kind}[]" for _, kind in EVENT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO analytics_event ({names}) SELECT * FROM unnest({unnest}) "  # noqa: S608 - fixed names
            "ON CONFLICT (uid) DO NOTHING RETURNING uid",
            [[row[name] for row in rows] for name, _ in EVENT_COLUMNS],
        )
        inserted = {str(uid) for (uid,) in cursor.fetchall()}
    new = [row for row in rows if row["uid"] in inserted]
    if new:
        _roll_up(new)
    return new


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _roll_up(rows: list[dict]) -> None:
    totals: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    hourly: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    links: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    clients: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    outcomes: dict[tuple, int] = defaultdict(int)
    workspace_of: dict[int, int] = {}
    span: dict[int, list] = {}

    for row in rows:
        campaign_id, kind = row["campaign_id"], row["type"]
        workspace_of[campaign_id] = row["workspace_id"]
        first, last = span.get(campaign_id, (row["occurred_at"], row["occurred_at"]))
        span[campaign_id] = [min(first, row["occurred_at"]), max(last, row["occurred_at"])]
        total, hour = totals[campaign_id], hourly[(campaign_id, _hour(row["occurred_at"]))]
        if kind == T.SENT:
            total["sent"] += 1
            total["delivered"] += 1
            hour["sent"] += 1
        elif kind in (T.BOUNCED, T.COMPLAINED, T.FAILED):
            field = {T.BOUNCED: "bounced", T.COMPLAINED: "complained", T.FAILED: "failed"}[kind]
            total[field] += 1
            if kind != T.FAILED:
                hour[field] += 1
            if kind == T.BOUNCED and row.get("was_sent"):
                total["delivered"] -= 1
            outcomes[(campaign_id, field, row.get("reason") or "Unknown reason")] += 1
        elif kind == T.UNSUBSCRIBED:
            total["unsubscribed"] += 1
            hour["unsubscribed"] += 1
        elif kind in (T.OPENED, T.CLICKED):
            noun = "opens" if kind == T.OPENED else "clicks"
            if row["is_bot"]:
                total[f"bot_{noun}"] += 1
                continue
            total[noun] += 1
            hour[noun] += 1
            clients[(campaign_id, row["device"], row["client"])][noun] += 1
            if kind == T.CLICKED and row["link_position"] is not None:
                links[(campaign_id, row["link_position"])]["clicks"] += 1

    _unique_engagement(rows, totals, hourly, links)

    _upsert_add(
        "analytics_campaignrollup",
        keys=("campaign_id",),
        extra=("workspace_id",),
        counters=(
            "sent",
            "delivered",
            "failed",
            "bounced",
            "complained",
            "unsubscribed",
            "opens",
            "unique_opens",
            "clicks",
            "unique_clicks",
            "bot_opens",
            "bot_clicks",
        ),
        rows=[{"campaign_id": c, "workspace_id": workspace_of[c], **values} for c, values in totals.items()],
        span={c: span[c] for c in totals},
    )
    _upsert_add(
        "analytics_campaignhourlyrollup",
        keys=("campaign_id", "hour"),
        counters=("sent", "bounced", "complained", "unsubscribed", "opens", "unique_opens", "clicks", "unique_clicks"),
        rows=[{"campaign_id": c, "hour": h, **values} for (c, h), values in hourly.items() if values],
    )
    _upsert_add(
        "analytics_linkrollup",
        keys=("campaign_id", "position"),
        counters=("clicks", "unique_clicks"),
        rows=[{"campaign_id": c, "position": p, **values} for (c, p), values in links.items()],
    )
    _upsert_add(
        "analytics_clientrollup",
        keys=("campaign_id", "device", "client"),
        counters=("opens", "clicks"),
        rows=[{"campaign_id": c, "device": d, "client": n, **values} for (c, d, n), values in clients.items()],
    )
    _upsert_add(
        "analytics_outcomerollup",
        keys=("campaign_id", "outcome", "reason"),
        counters=("count",),
        rows=[{"campaign_id": c, "outcome": o, "reason": r[:80], "count": n} for (c, o, r), n in outcomes.items()],
    )


def _unique_engagement(rows, totals, hourly, links) -> None:
    """First human open, first human click and first click per link of each delivery."""
    human = [r for r in rows if r["type"] in (T.OPENED, T.CLICKED) and not r["is_bot"]]
    if not human:
        return
    ids = sorted({r["delivery_id"] for r in human})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT delivery_id, opens, clicks, clicked_positions, first_open_at, first_click_at, last_activity_at "
            "FROM analytics_recipientactivity WHERE delivery_id = ANY(%s) FOR UPDATE",
            [ids],
        )
        state = {
            row[0]: {
                "opens": row[1],
                "clicks": row[2],
                "positions": set(row[3] or []),
                "first_open_at": row[4],
                "first_click_at": row[5],
                "last_activity_at": row[6],
            }
            for row in cursor.fetchall()
        }
    owner = {}
    for row in sorted(human, key=lambda r: r["occurred_at"]):
        delivery_id, campaign_id, at = row["delivery_id"], row["campaign_id"], row["occurred_at"]
        owner[delivery_id] = (campaign_id, row["workspace_id"])
        one = state.setdefault(
            delivery_id,
            {
                "opens": 0,
                "clicks": 0,
                "positions": set(),
                "first_open_at": None,
                "first_click_at": None,
                "last_activity_at": None,
            },
        )
        one["last_activity_at"] = max(filter(None, [one["last_activity_at"], at]))
        hour = hourly[(campaign_id, _hour(at))]
        if row["type"] == T.OPENED:
            one["opens"] += 1
            if one["first_open_at"] is None:
                one["first_open_at"] = at
                totals[campaign_id]["unique_opens"] += 1
                hour["unique_opens"] += 1
        else:
            one["clicks"] += 1
            if one["first_click_at"] is None:
                one["first_click_at"] = at
                totals[campaign_id]["unique_clicks"] += 1
                hour["unique_clicks"] += 1
            position = row["link_position"]
            if position is not None and position not in one["positions"]:
                one["positions"].add(position)
                links[(campaign_id, position)]["unique_clicks"] += 1
    columns = [
        ("delivery_id", "bigint"),
        ("campaign_id", "bigint"),
        ("workspace_id", "bigint"),
        ("opens", "integer"),
        ("clicks", "integer"),
        ("first_open_at", "timestamptz"),
        ("first_click_at", "timestamptz"),
        ("last_activity_at", "timestamptz"),
    ]
    values = {name: [] for name, _ in columns}
    positions = []
    for delivery_id, (campaign_id, workspace_id) in owner.items():
        one = state[delivery_id]
        for name, value in (
            ("delivery_id", delivery_id),
            ("campaign_id", campaign_id),
            ("workspace_id", workspace_id),
            ("opens", one["opens"]),
            ("clicks", one["clicks"]),
            ("first_open_at", one["first_open_at"]),
            ("first_click_at", one["first_click_at"]),
            ("last_activity_at", one["last_activity_at"]),
        ):
            values[name].append(value)
        # Arrays of arrays must be rectangular for unnest: carry each as a "{1,2}" literal.
        positions.append("{" + ",".join(str(p) for p in sorted(one["positions"])) + "}")
    names = ", ".join(name for name, _ in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO analytics_recipientactivity ({names}, clicked_positions)
            SELECT {names}, cp::integer[]
            FROM unnest({", ".join(f"%s::{kind}[]" for _, kind in columns)}, %s::text[])
                AS v ({names}, cp)
            ON CONFLICT (delivery_id) DO UPDATE SET
                opens = EXCLUDED.opens, clicks = EXCLUDED.clicks, clicked_positions = EXCLUDED.clicked_positions,
                first_open_at = EXCLUDED.first_open_at, first_click_at = EXCLUDED.first_click_at,
                last_activity_at = EXCLUDED.last_activity_at
            """,  # noqa: S608 - fixed names
            [values[name] for name, _ in columns] + [positions],
        )


def _upsert_add(table: str, *, keys, counters, rows, extra=(), span=None) -> None:
    """INSERT the rows or add their counters to the existing ones, in one statement."""
    rows = [row for row in rows if any(row.get(c) for c in counters)]
    if not rows:
        return
    columns = [*keys, *extra, *counters]
    if span is not None:
        columns += ["first_event_at", "last_event_at", "updated_at"]
        now = timezone.now()
        for row in rows:
            row["first_event_at"], row["last_event_at"] = span[row["campaign_id"]]
            row["updated_at"] = now
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updates = [f"{c} = {table}.{c} + EXCLUDED.{c}" for c in counters]
    if span is not None:
        updates += [
            f"first_event_at = LEAST({table}.first_event_at, EXCLUDED.first_event_at)",
            f"last_event_at = GREATEST({table}.last_event_at, EXCLUDED.last_event_at)",
            "updated_at = EXCLUDED.updated_at",
        ]
    # A stable order keeps concurrent upserts (only ever under the lock anyway) deadlock-free.
    rows.sort(key=lambda row: tuple(str(row[k]) for k in keys))
    params = [row.get(c, 0) for row in rows for c in columns]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([placeholders] * len(rows))} "  # noqa: S608
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}",
            params,
        )


# --- the ledger and the audience, read incrementally ---------------------------------


def _advance(name: str, *, sql: str, limit: int, settle_seconds: float, build) -> int:
    """Read rows of another app's table after the cursor, turn them into events, move the cursor.

    Rows are read by (updated_at, id) and only up to `settle_seconds` ago, so a transaction that
    stamped its rows a moment before committing is not skipped; a row read again later (it
    changed again) only re-derives events whose uids already exist.
    """
    with transaction.atomic():
        _lock()
        cursor_row, _ = Cursor.objects.using("default").select_for_update().get_or_create(name=name)
        position = cursor_row.position or datetime(1970, 1, 1, tzinfo=UTC)
        until = timezone.now() - timedelta(seconds=settle_seconds)
        with connection.cursor() as cursor:
            cursor.execute(sql, [position, position, cursor_row.last_id, until, limit])
            fetched = cursor.fetchall()
        if not fetched:
            return 0
        _ingest_rows(build(fetched))
        last = fetched[-1]
        cursor_row.position, cursor_row.last_id = last[1], last[0]
        cursor_row.save(update_fields=["position", "last_id", "updated_at"])
        return len(fetched)


LEDGER_SQL = """
    SELECT id, updated_at, workspace_id, campaign_id, subscriber_id, status, sent_at, bounced_at,
           complained_at, smtp_code, smtp_response
    FROM campaigns_delivery
    WHERE (updated_at > %s OR (updated_at = %s AND id > %s)) AND updated_at <= %s
      AND status IN ('sent', 'failed', 'bounced', 'complained')
    ORDER BY updated_at, id
    LIMIT %s
"""


def _ledger_events(fetched) -> list[dict]:
    rows = []
    for (
        delivery_id,
        updated_at,
        workspace_id,
        campaign_id,
        subscriber_id,
        status,
        sent_at,
        bounced_at,
        complained_at,
        code,
        response,
    ) in fetched:
        base = {
            "workspace_id": workspace_id,
            "campaign_id": campaign_id,
            "delivery_id": delivery_id,
            "subscriber_id": subscriber_id,
            "link_position": None,
            "is_bot": False,
            "bot_reason": "",
            "device": "",
            "client": "",
            "ip": None,
            "user_agent": "",
            "detail": "",
        }
        if sent_at is not None:
            rows.append({**base, "uid": ledger_uid(delivery_id, "sent"), "type": T.SENT, "occurred_at": sent_at})
        if status == "failed":
            rows.append(
                {
                    **base,
                    "uid": ledger_uid(delivery_id, "failed"),
                    "type": T.FAILED,
                    "occurred_at": updated_at,
                    "detail": (response or "")[:300],
                    "reason": outcome_reason(code, response),
                }
            )
        if status == "bounced" or bounced_at is not None:
            rows.append(
                {
                    **base,
                    "uid": ledger_uid(delivery_id, "bounced"),
                    "type": T.BOUNCED,
                    "occurred_at": bounced_at or updated_at,
                    "detail": (response or "")[:300],
                    "reason": outcome_reason(code, response),
                    "was_sent": sent_at is not None,
                }
            )
        if status == "complained" or complained_at is not None:
            rows.append(
                {
                    **base,
                    "uid": ledger_uid(delivery_id, "complained"),
                    "type": T.COMPLAINED,
                    "occurred_at": complained_at or updated_at,
                    "detail": (response or "")[:300],
                    "reason": "Spam complaint (feedback report)",
                }
            )
    return rows


def ledger_sync(*, limit: int = 5000) -> int:
    """Turn new delivery outcomes of the campaigns ledger into events; returns rows read."""
    return _advance(
        "ledger",
        sql=LEDGER_SQL,
        limit=limit,
        settle_seconds=settings.ANALYTICS_LEDGER_SETTLE_SECONDS,
        build=_ledger_events,
    )


UNSUBSCRIBE_SQL = """
    SELECT m.id, m.updated_at, m.workspace_id, m.subscriber_id, m.unsubscribed_at
    FROM subscribers_listmembership m
    WHERE (m.updated_at > %s OR (m.updated_at = %s AND m.id > %s)) AND m.updated_at <= %s
      AND m.status = 'unsubscribed' AND m.unsubscribed_at IS NOT NULL
    ORDER BY m.updated_at, m.id
    LIMIT %s
"""


def _unsubscribe_events(fetched) -> list[dict]:
    """An unsubscribe counts for the last campaign sent to the person before they left (once per message)."""
    wanted = [(row[3], row[4]) for row in fetched if row[3] is not None]
    if not wanted:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT ON (w.subscriber_id, w.at) w.subscriber_id, w.at, d.id, d.campaign_id, d.workspace_id
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS w (subscriber_id, at)
            JOIN campaigns_delivery d ON d.subscriber_id = w.subscriber_id AND d.sent_at <= w.at
            ORDER BY w.subscriber_id, w.at, d.sent_at DESC
            """,
            [[s for s, _ in wanted], [a for _, a in wanted]],
        )
        found = cursor.fetchall()
    rows, seen = [], set()
    for subscriber_id, at, delivery_id, campaign_id, workspace_id in found:
        if delivery_id in seen:
            continue
        seen.add(delivery_id)
        rows.append(
            {
                "uid": ledger_uid(delivery_id, "unsubscribed"),
                "workspace_id": workspace_id,
                "campaign_id": campaign_id,
                "delivery_id": delivery_id,
                "subscriber_id": subscriber_id,
                "type": T.UNSUBSCRIBED,
                "occurred_at": at,
                "link_position": None,
                "is_bot": False,
                "bot_reason": "",
                "device": "",
                "client": "",
                "ip": None,
                "user_agent": "",
                "detail": "",
            }
        )
    return rows


def unsubscribes_sync(*, limit: int = 5000) -> int:
    """Turn new unsubscribes into events of the campaign that prompted them; returns rows read."""
    return _advance(
        "unsubscribes",
        sql=UNSUBSCRIBE_SQL,
        limit=limit,
        settle_seconds=settings.ANALYTICS_LEDGER_SETTLE_SECONDS,
        build=_unsubscribe_events,
    )


def audience_stats_refresh(*, days: int = 35) -> int:
    """Recompute subscriber growth of the last `days` days for every workspace (a task, never a page)."""
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH days AS (SELECT generate_series(%s::date, %s::date, '1 day')::date AS day),
            joined AS (
                SELECT workspace_id, created_at::date AS day, count(*) AS n FROM subscribers_subscriber
                WHERE created_at >= %s GROUP BY 1, 2),
            left_ AS (
                SELECT workspace_id, status_changed_at::date AS day, count(*) AS n FROM subscribers_subscriber
                WHERE status <> 'active' AND status_changed_at >= %s GROUP BY 1, 2),
            current_ AS (
                SELECT w.id AS workspace_id,
                       (SELECT count(*) FROM subscribers_subscriber s
                        WHERE s.workspace_id = w.id AND s.status = 'active') AS n
                FROM accounts_workspace w)
            INSERT INTO analytics_workspacedailystat (workspace_id, day, subscribers, joined, "left")
            SELECT c.workspace_id, d.day,
                   c.n - COALESCE((SELECT sum(j.n) FROM joined j
                                   WHERE j.workspace_id = c.workspace_id AND j.day > d.day), 0)
                       + COALESCE((SELECT sum(l.n) FROM left_ l
                                   WHERE l.workspace_id = c.workspace_id AND l.day > d.day), 0),
                   COALESCE((SELECT n FROM joined j WHERE j.workspace_id = c.workspace_id AND j.day = d.day), 0),
                   COALESCE((SELECT n FROM left_ l WHERE l.workspace_id = c.workspace_id AND l.day = d.day), 0)
            FROM current_ c CROSS JOIN days d
            ON CONFLICT (workspace_id, day) DO UPDATE SET
                subscribers = EXCLUDED.subscribers, joined = EXCLUDED.joined, "left" = EXCLUDED."left"
            """,
            [start, today, start, start],
        )
        return cursor.rowcount
