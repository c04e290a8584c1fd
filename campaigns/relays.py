"""SMTP relays: choosing one, the circuit breaker, pooled connections and rate limits.

Choice: the workspace's active relays (or the platform defaults when it has none), lowest
priority number first; relays of equal priority share the traffic by weight. A relay whose
circuit is open is skipped until a half-open probe (one worker at a time) succeeds.

The breaker's state lives in Postgres (the `circuit_*` columns of `Relay`), moved by conditional
UPDATEs so every worker agrees; a worker reads it once per batch and writes only on failures
and state changes, so the hot path costs nothing. Rate limits are Redis token buckets shared by
all workers; if Redis is away each worker falls back to a local bucket at the same rate.

Each worker process keeps one SMTP connection per relay open across batches (`RelayPool`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from campaigns.models import Relay

logger = logging.getLogger(__name__)

# A worker's claim on one of a relay's max_connections is refreshed this often while in use and
# lapses when not refreshed for the stale period (its worker died).
CONNECTION_HEARTBEAT_SECONDS = 10.0
CONNECTION_STALE_SECONDS = 60.0

# Outcome kinds of one attempt to hand a message to a relay.
SENT = "sent"
DEFERRED = "deferred"  # 4xx for this message: retry it later
FAILED = "failed"  # 5xx: permanent
BOUNCED = "bounced"  # 5xx 5.1.x on RCPT: the address does not exist
UNAVAILABLE = "unavailable"  # no relay could take the message now (all down or open)


@dataclass
class SendResult:
    kind: str
    code: int | None = None
    response: str = ""
    relay_id: int | None = None


class RelayFailure(Exception):
    """The relay itself is in trouble (refused, timed out, hung up, 421): try another."""

    def __init__(self, response: str, code: int | None = None):
        super().__init__(response)
        self.response = response
        self.code = code


def relays_for_workspace(*, workspace_id: int) -> list[Relay]:
    """The relays this workspace sends through: its own active ones, else the platform's."""
    own = list(Relay.objects.filter(workspace_id=workspace_id, is_active=True))
    if own:
        return own
    return list(Relay.objects.filter(workspace__isnull=True, is_active=True))


def has_usable_relay(*, workspace_id: int) -> bool:
    return bool(relays_for_workspace(workspace_id=workspace_id))


# --- Circuit breaker (Postgres) --------------------------------------------------------------


def circuit_record_failure(*, relay: Relay, error: str) -> None:
    """Count a failure; past RELAY_CIRCUIT_FAILURES in a row (or a failed probe) the circuit opens."""
    now = timezone.now()
    error = error[:1000]
    Relay.objects.filter(pk=relay.pk).update(
        circuit_failures=F("circuit_failures") + 1, last_error=error, last_error_at=now
    )
    opened = (
        Relay.objects.filter(pk=relay.pk)
        .filter(
            Q(circuit_state=Relay.Circuit.HALF_OPEN)
            | Q(circuit_state=Relay.Circuit.CLOSED, circuit_failures__gte=settings.RELAY_CIRCUIT_FAILURES)
        )
        .update(circuit_state=Relay.Circuit.OPEN, circuit_opened_at=now)
    )
    if opened:
        logger.warning("relay circuit opened", extra={"relay_id": relay.pk, "error": error})
    relay.circuit_failures += 1
    relay.last_error, relay.last_error_at = error, now
    if opened or relay.circuit_failures >= settings.RELAY_CIRCUIT_FAILURES:
        relay.circuit_state, relay.circuit_opened_at = Relay.Circuit.OPEN, now


def circuit_record_success(*, relay: Relay) -> None:
    """A message went through: the relay is healthy (written only when something changes)."""
    if relay.circuit_state == Relay.Circuit.CLOSED and relay.circuit_failures == 0:
        return
    now = timezone.now()
    closed = Relay.objects.filter(pk=relay.pk).update(
        circuit_state=Relay.Circuit.CLOSED, circuit_failures=0, circuit_opened_at=None, last_success_at=now
    )
    if closed and relay.circuit_state != Relay.Circuit.CLOSED:
        logger.info("relay circuit closed", extra={"relay_id": relay.pk})
    relay.circuit_state, relay.circuit_failures, relay.circuit_opened_at = Relay.Circuit.CLOSED, 0, None


def circuit_try_probe(*, relay: Relay) -> bool:
    """Whether this worker may send a probe through an open relay whose cool-down has passed.

    One worker wins the conditional UPDATE; if it dies mid-probe the cool-down passes again and
    another worker probes.
    """
    now = timezone.now()
    cooled = now - timedelta(seconds=settings.RELAY_CIRCUIT_OPEN_SECONDS)
    won = (
        Relay.objects.filter(pk=relay.pk, circuit_state__in=[Relay.Circuit.OPEN, Relay.Circuit.HALF_OPEN])
        .filter(circuit_opened_at__lte=cooled)
        .update(circuit_state=Relay.Circuit.HALF_OPEN, circuit_opened_at=now)
    )
    if won:
        relay.circuit_state = Relay.Circuit.HALF_OPEN
    # Won or lost, this worker's copy waits out a fresh cool-down before it asks again.
    relay.circuit_opened_at = now
    return bool(won)


def circuit_is_cooled(relay: Relay) -> bool:
    if relay.circuit_opened_at is None:
        return True
    return timezone.now() - relay.circuit_opened_at >= timedelta(seconds=settings.RELAY_CIRCUIT_OPEN_SECONDS)


# --- Rate limits (Redis token buckets) ------------------------------------------------------

# Reserve `want` tokens and answer how long to wait for them; the bucket may go negative, so
# concurrent callers queue up fairly instead of all retrying at once.
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate) - want
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], 120)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""


class RateLimiter:
    """Token buckets by name, shared through Redis, local if Redis fails."""

    def __init__(self):
        self._script = None
        self._local: dict[str, list[float]] = {}

    def _redis_wait(self, key: str, rate: float, want: int) -> float:
        from django_redis import get_redis_connection

        if self._script is None:
            self._script = get_redis_connection("default").register_script(_BUCKET_SCRIPT)
        return float(self._script(keys=[f"herald:bucket:{key}"], args=[rate, max(rate, 1.0), want]))

    def _local_wait(self, key: str, rate: float, want: int) -> float:
        now = time.monotonic()
        tokens, ts = self._local.get(key, [max(rate, 1.0), now])
        tokens = min(max(rate, 1.0), tokens + (now - ts) * rate) - want
        self._local[key] = [tokens, now]
        return 0.0 if tokens >= 0 else -tokens / rate

    def acquire(self, key: str, rate: float, want: int = 1) -> None:
        try:
            wait = self._redis_wait(key, rate, want)
        except Exception:  # Redis away: keep the limit per worker rather than stop sending.
            self._script = None
            wait = self._local_wait(key, rate, want)
        if wait > 0:
            time.sleep(min(wait, 5.0))


# --- Connections ---------------------------------------------------------------------------


def open_connection(relay: Relay) -> smtplib.SMTP:
    """A logged-in SMTP connection to the relay, or RelayFailure."""
    try:
        if relay.tls_mode == Relay.TlsMode.TLS:
            smtp = smtplib.SMTP_SSL(
                relay.host, relay.port, timeout=relay.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_seconds)
        smtp.ehlo()
        if relay.tls_mode == Relay.TlsMode.STARTTLS:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if relay.username:
            smtp.login(relay.username, relay.password)
        return smtp
    except smtplib.SMTPResponseException as error:
        raise RelayFailure(_describe(error.smtp_code, error.smtp_error), error.smtp_code) from None
    except (OSError, smtplib.SMTPException) as error:
        raise RelayFailure(f"{type(error).__name__}: {error}") from None


def relay_test(*, relay: Relay) -> tuple[bool, str]:
    """Connect, greet, log in and say NOOP: what the relays page's Test button reports."""
    started = time.monotonic()
    try:
        smtp = open_connection(relay)
        code, _ = smtp.noop()
        smtp.quit()
    except RelayFailure as failure:
        return False, failure.response
    except (OSError, smtplib.SMTPException) as error:
        return False, f"{type(error).__name__}: {error}"
    return True, f"Connected and logged in; NOOP answered {code} in {time.monotonic() - started:.2f} s."


def _describe(code: int | None, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return f"{code} {text}".strip()[:1000]


@dataclass
class _Connection:
    smtp: smtplib.SMTP
    fingerprint: tuple
    used: int = 0


@dataclass
class RelayPool:
    """One worker process's connections, one per relay, reused across batches."""

    connections: dict[int, _Connection] = field(default_factory=dict)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    holders: dict[int, tuple[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _fingerprint(relay: Relay) -> tuple:
        return (relay.host, relay.port, relay.tls_mode, relay.username, relay.password)

    def _connection(self, relay: Relay) -> tuple[_Connection, bool]:
        current = self.connections.get(relay.pk)
        if current is not None and current.fingerprint == self._fingerprint(relay):
            return current, False
        self.drop(relay.pk)
        current = _Connection(open_connection(relay), self._fingerprint(relay))
        self.connections[relay.pk] = current
        return current, True

    def _may_connect(self, relay: Relay) -> bool:
        """Whether this worker may hold a connection to the relay within its max_connections.

        Holders are a Redis sorted set of connection ids scored by their last use; an id not
        refreshed for CONNECTION_STALE_SECONDS (its worker died) no longer counts. Without
        Redis the cap is not enforced: sending matters more than the cap.
        """
        now = time.time()
        holder = self.holders.get(relay.pk)
        if holder and now - holder[1] < CONNECTION_HEARTBEAT_SECONDS:
            return True
        # Read the pid here, not at import: prefork children inherit the parent's module state.
        token = holder[0] if holder else f"{socket.gethostname()}:{os.getpid()}:{relay.pk}"
        key = f"herald:relay:{relay.pk}:connections"
        try:
            from django_redis import get_redis_connection

            client = get_redis_connection("default")
            client.zremrangebyscore(key, "-inf", now - CONNECTION_STALE_SECONDS)
            if client.zscore(key, token) is None and client.zcard(key) >= relay.max_connections:
                return False
            client.zadd(key, {token: now})
            client.expire(key, int(CONNECTION_STALE_SECONDS * 4))
        except Exception:
            logger.warning("could not count relay connections; not enforcing max_connections", exc_info=True)
        self.holders[relay.pk] = (token, now)
        return True

    def _release_slot(self, relay_id: int) -> None:
        holder = self.holders.pop(relay_id, None)
        if holder is None:
            return
        with contextlib.suppress(Exception):
            from django_redis import get_redis_connection

            get_redis_connection("default").zrem(f"herald:relay:{relay_id}:connections", holder[0])

    def drop(self, relay_id: int) -> None:
        self._release_slot(relay_id)
        current = self.connections.pop(relay_id, None)
        if current is not None:
            # Closing a broken socket may fail; it is gone either way.
            with contextlib.suppress(Exception):
                current.smtp.close()

    def close(self) -> None:
        for relay_id in list(self.connections):
            self.drop(relay_id)

    def _send_on(self, relay: Relay, mail_from: str, rcpt: str, message: bytes) -> SendResult:
        """One message through one relay; RelayFailure when the relay, not the message, failed."""
        for attempt in (1, 2):
            connection, fresh = self._connection(relay)
            try:
                refused = connection.smtp.sendmail(mail_from, [rcpt], message)
            except smtplib.SMTPServerDisconnected as error:
                self.drop(relay.pk)
                # A reused connection the relay closed while idle: reconnect once, not a failure.
                if not fresh and attempt == 1:
                    continue
                raise RelayFailure(f"Disconnected: {error}") from None
            except smtplib.SMTPRecipientsRefused as error:
                code, text = error.recipients.get(rcpt, (None, b""))
                return self._classify(relay, code, text, stage="rcpt")
            except smtplib.SMTPSenderRefused as error:
                return self._classify(relay, error.smtp_code, error.smtp_error, stage="mail")
            except smtplib.SMTPDataError as error:
                return self._classify(relay, error.smtp_code, error.smtp_error, stage="data")
            except smtplib.SMTPResponseException as error:
                return self._classify(relay, error.smtp_code, error.smtp_error, stage="other")
            except (OSError, smtplib.SMTPException) as error:
                self.drop(relay.pk)
                raise RelayFailure(f"{type(error).__name__}: {error}") from None
            if refused:
                code, text = refused.get(rcpt, (None, b""))
                return self._classify(relay, code, text, stage="rcpt")
            connection.used += 1
            return SendResult(SENT, 250, "250 accepted", relay.pk)
        raise RelayFailure("Disconnected twice")  # pragma: no cover - the loop returns or raises

    def _classify(self, relay: Relay, code: int | None, text, *, stage: str) -> SendResult:
        response = _describe(code, text)
        if code is None or code == 421 or code < 400:
            # 421 means the relay is closing the channel: its trouble, not the message's.
            self.drop(relay.pk)
            raise RelayFailure(response, code)
        if code < 500:
            # The transaction is aborted; reset it so the connection can carry the next message.
            self._reset(relay)
            raise RelayFailure(response, code) if stage == "mail" else _Deferred(response, code)
        self._reset(relay)
        text = response.split(" ", 2)
        enhanced = text[1] if len(text) > 1 else ""
        if stage == "rcpt" and (enhanced.startswith("5.1.") or code in (550, 551, 553) and not enhanced):
            return SendResult(BOUNCED, code, response, relay.pk)
        return SendResult(FAILED, code, response, relay.pk)

    def _reset(self, relay: Relay) -> None:
        connection = self.connections.get(relay.pk)
        if connection is None:
            return
        try:
            connection.smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.drop(relay.pk)

    def send(
        self,
        *,
        relays: list[Relay],
        mail_from: str,
        rcpt: str,
        message: bytes,
        rate_keys: tuple[tuple[str, float], ...] = (),
    ) -> SendResult:
        """Send through the best available relay, failing over down the priority order."""
        tried: set[int] = set()
        last_failure = "No active relay is configured."
        while True:
            relay = choose_relay(relays, exclude=tried)
            if relay is None:
                return SendResult(UNAVAILABLE, None, last_failure, None)
            tried.add(relay.pk)
            if not self._may_connect(relay):
                # Every connection this relay allows is held by other workers: not a failure.
                last_failure = f"{relay.name}: all {relay.max_connections} connections are in use"
                continue
            for key, rate in rate_keys:
                self.limiter.acquire(key, rate)
            if relay.max_per_second:
                self.limiter.acquire(f"relay:{relay.pk}", float(relay.max_per_second))
            try:
                result = self._send_on(relay, mail_from, rcpt, message)
            except _Deferred as deferred:
                # A 4xx for this message counts against the relay too ("repeated 4xx" opens it).
                circuit_record_failure(relay=relay, error=deferred.response)
                return SendResult(DEFERRED, deferred.code, deferred.response, relay.pk)
            except RelayFailure as failure:
                circuit_record_failure(relay=relay, error=failure.response)
                last_failure = f"{relay.name}: {failure.response}"
                logger.info("relay failed, trying the next", extra={"relay_id": relay.pk, "error": failure.response})
                continue
            circuit_record_success(relay=relay)
            return result


class _Deferred(Exception):
    def __init__(self, response: str, code: int):
        super().__init__(response)
        self.response = response
        self.code = code


def choose_relay(relays: list[Relay], *, exclude: set[int] = frozenset()) -> Relay | None:
    """The relay for the next message: lowest priority number among usable ones, by weight."""
    usable: list[Relay] = []
    for relay in relays:
        if relay.pk in exclude or not relay.is_active:
            continue
        if relay.circuit_state == Relay.Circuit.CLOSED:
            usable.append(relay)
        elif circuit_is_cooled(relay) and circuit_try_probe(relay=relay):
            # This worker won the half-open probe: the next message goes through this relay.
            return relay
    if not usable:
        return None
    best = min(relay.priority for relay in usable)
    group = [relay for relay in usable if relay.priority == best]
    if len(group) == 1:
        return group[0]
    return random.choices(group, weights=[relay.weight for relay in group])[0]  # noqa: S311 - load sharing
