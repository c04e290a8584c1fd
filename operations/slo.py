"""Service level objectives: recording good and bad events, and reading each objective over a window.

Events are counted per minute in Redis (one round trip on the request path) and flushed into
Postgres by the monitor process; while Redis is away they are counted in Postgres directly.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from operations.models import SliMinute

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
