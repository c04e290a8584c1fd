"""Service level objectives: recording good and bad events, and reading each objective over a window.

Events are counted per minute in Redis (one round trip on the request path) and flushed into
Postgres by the monitor process; while Redis is away they are counted in Postgres directly.
Where a figure is already in an app's own tables (send attempts in the delivery ledger,
finished imports), the monitor reads it there instead (`sli_collect`), minute by minute behind
a cursor; the apps record nothing for operations.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from operations.models import SliCursor, SliMinute

logger = logging.getLogger(__name__)

OBJECTIVES = {
    "send_success": ("Campaign send success", "Deliveries a relay accepted, of those attempted."),
    "api_latency": ("API latency", "API requests answered without a server error within SLO_API_LATENCY_MS."),
    "dashboard_availability": ("Dashboard availability", "Synthetic checks of sign-in and the dashboard that passed."),
    "import_latency": ("Import latency", "Imports finished within SLO_IMPORT_SECONDS_PER_100K_ROWS of upload."),
}
WINDOWS = {"1 h": timedelta(hours=1), "24 h": timedelta(days=1), "30 d": timedelta(days=30)}
PENDING_INDEX = "sli:pending"
BUFFER_TTL_SECONDS = 6 * 3600


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _buffer_key(objective: str, minute: datetime) -> str:
    return f"sli:{objective}:{int(minute.timestamp())}"


def sli_record(*, objective: str, good: bool) -> None:
    """Count one event of `objective`; never raises on the request path."""
    minute = _minute(timezone.now())
    key = _buffer_key(objective, minute)
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        pipe.hincrby(key, "total", 1)
        if good:
            pipe.hincrby(key, "good", 1)
        pipe.expire(key, BUFFER_TTL_SECONDS)
        pipe.zadd(PENDING_INDEX, {key: minute.timestamp()})
        pipe.execute()
    except RedisError:
        _record_directly(objective, minute, good)


def _record_directly(objective: str, minute: datetime, good: bool) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO operations_sliminute (objective, minute, source, good, total) "
                "VALUES (%s, %s, 'direct', %s, 1) ON CONFLICT (objective, minute, source) "
                "DO UPDATE SET good = operations_sliminute.good + EXCLUDED.good, "
                "total = operations_sliminute.total + 1",
                [objective, minute, int(good)],
            )
    except Exception:
        logger.warning("an SLI event could not be recorded", extra={"objective": objective})


def sli_flush(*, until: datetime | None = None) -> int:
    """Copy every minute before `until` (default: the current minute, still counting) from Redis
    into Postgres; returns how many minutes were copied.

    A minute's row is rewritten with Redis's full count, so flushing twice is harmless.
    """
    client = get_redis_connection("default")
    cutoff = _minute(until or timezone.now()).timestamp()
    keys = [
        key.decode() if isinstance(key, bytes) else key for key in client.zrangebyscore(PENDING_INDEX, 0, f"({cutoff}")
    ]
    flushed = 0
    for key in keys:
        counts = client.hgetall(key)
        if counts:
            _, objective, epoch = key.split(":")
            minute = datetime.fromtimestamp(int(epoch), tz=UTC)
            total = int(counts.get(b"total", 0))
            good = int(counts.get(b"good", 0))
            SliMinute.objects.update_or_create(
                objective=objective,
                minute=minute,
                source=SliMinute.Source.BUFFER,
                defaults={"good": good, "total": total},
            )
            flushed += 1
        client.zrem(PENDING_INDEX, key)
    return flushed


@dataclass
class WindowFigure:
    window: str
    good: int
    total: int
    target: float

    @property
    def percent(self) -> float | None:
        return 100.0 * self.good / self.total if self.total else None

    @property
    def burn_rate(self) -> float | None:
        """How fast the error budget is spent: 1 spends it exactly over the window."""
        if not self.total:
            return None
        return ((self.total - self.good) / self.total) / (1 - self.target / 100)

    @property
    def budget_left_percent(self) -> float | None:
        burn = self.burn_rate
        return None if burn is None else max(0.0, 100.0 * (1 - burn))


def _counted(objective: str, since: datetime) -> tuple[int, int]:
    sums = SliMinute.objects.filter(objective=objective, minute__gte=since).aggregate(
        good=Sum("good"), total=Sum("total")
    )
    return sums["good"] or 0, sums["total"] or 0


def objectives_report() -> list[dict]:
    """Every objective with its target and its figure over each window."""
    now = timezone.now()
    report = []
    for key, (title, description) in OBJECTIVES.items():
        target = settings.SLO_TARGETS[key]
        figures = [WindowFigure(label, *_counted(key, now - span), target) for label, span in WINDOWS.items()]
        report.append({"key": key, "title": title, "description": description, "target": target, "windows": figures})
    return report


def burn_rates(windows: dict[str, timedelta] | None = None) -> dict[tuple[str, str], tuple[float, int]]:
    """(objective, window) -> (burn rate, events counted), for objectives with events in the window."""
    now = timezone.now()
    rates = {}
    for key in OBJECTIVES:
        for label, span in (windows or WINDOWS).items():
            figure = WindowFigure(label, *_counted(key, now - span), settings.SLO_TARGETS[key])
            if figure.total:
                rates[(key, label)] = (figure.burn_rate, figure.total)
    return rates


# --- Indicators read from the apps' tables ------------------------------------------------------

# How far back a first collection reaches, and how much one round reads at most (a monitor that
# was down for days catches up over a few rounds instead of one long query).
FIRST_COLLECTION = timedelta(hours=1)
MAX_COLLECTION = timedelta(hours=6)


def _collection_lag() -> timedelta:
    """A minute is read once nothing can still land in it: a worker stamps sent_at before its
    batch is settled, at most a lease later; an import stamps finished_at as it commits."""
    return timedelta(seconds=settings.SEND_LEASE_SECONDS + 60)


def _send_success_minutes(since: datetime, until: datetime) -> dict[datetime, tuple[int, int]]:
    from operations.app_figures import delivery_outcomes

    minutes: dict[datetime, list[int]] = {}
    for row in delivery_outcomes(since=since, until=until):
        counts = minutes.setdefault(row.minute, [0, 0])
        counts[0] += row.count if row.accepted else 0
        counts[1] += row.count
    return {minute: (good, total) for minute, (good, total) in minutes.items()}


def import_allowed_seconds(rows: int) -> float:
    """SLO_IMPORT_SECONDS_PER_100K_ROWS per 100,000 rows, and never less than that for a small file."""
    return settings.SLO_IMPORT_SECONDS_PER_100K_ROWS * max(1.0, rows / 100_000)


def _import_latency_minutes(since: datetime, until: datetime) -> dict[datetime, tuple[int, int]]:
    from operations.app_figures import imports_finished

    minutes: dict[datetime, list[int]] = {}
    for finished_at, created_at, queued_at, status, total_rows, records_read in imports_finished(
        since=since, until=until
    ):
        # Timed from the moment the file was handed over with its mapping (queued), not from
        # the upload: the time a person spends choosing columns is not Herald's latency.
        started = queued_at or created_at
        rows = max(total_rows, records_read)
        good = status == "completed" and (finished_at - started).total_seconds() <= import_allowed_seconds(rows)
        counts = minutes.setdefault(_minute(finished_at), [0, 0])
        counts[0] += int(good)
        counts[1] += 1
    return {minute: (good, total) for minute, (good, total) in minutes.items()}


COLLECTED = {"send_success": _send_success_minutes, "import_latency": _import_latency_minutes}


def sli_collect(*, now: datetime | None = None) -> dict[str, int]:
    """Count every whole minute since each cursor from the apps' tables; returns minutes read per objective.

    Each minute's `ledger` row is rewritten whole in the transaction that moves the cursor, so a
    rerun (or a monitor killed half-way) never counts an event twice.
    """
    until = _minute((now or timezone.now()) - _collection_lag())
    read = {}
    for objective, count_minutes in COLLECTED.items():
        with transaction.atomic():
            cursor = SliCursor.objects.select_for_update().filter(objective=objective).first()
            since = cursor.position if cursor else until - FIRST_COLLECTION
            end = min(until, since + MAX_COLLECTION)
            if end <= since:
                read[objective] = 0
                continue
            counted = count_minutes(since, end)
            SliMinute.objects.filter(
                objective=objective, source=SliMinute.Source.LEDGER, minute__gte=since, minute__lt=end
            ).delete()
            SliMinute.objects.bulk_create(
                SliMinute(objective=objective, minute=minute, source=SliMinute.Source.LEDGER, good=good, total=total)
                for minute, (good, total) in counted.items()
            )
            SliCursor.objects.update_or_create(objective=objective, defaults={"position": end})
            read[objective] = int((end - since).total_seconds() // 60)
    return read
