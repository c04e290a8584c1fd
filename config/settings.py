"""Herald's one settings module: every value comes from the environment (see .env.example)."""

import re
from datetime import timedelta
from pathlib import Path

import dj_database_url

from config.env import (
    ConfigurationError,
    env_bool,
    env_float,
    env_host_ports,
    env_int,
    env_list,
    env_percentages,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ConfigurationError("SECRET_KEY", "is required when DEBUG is off (set SECRET_KEY or SECRET_KEY_FILE).")
    SECRET_KEY = "development-only-secret-key-not-for-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Served over HTTPS (production): secure cookies, HSTS and a redirect to https. The local
# launchers turn it off because they serve plain http on 127.0.0.1.
HTTPS = env_bool("HTTPS", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
# The load balancer probes plain http; a redirect would read as a failed check.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^health$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "accounts",
    "subscribers",
    "campaigns",
    "analytics",
    "operations",
]

MIDDLEWARE = [
    "operations.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "common.db_routing.ReplicaPinningMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.WorkspaceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Axes must come last: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.workspace",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------

CONN_MAX_AGE = env_int("CONN_MAX_AGE", 60, minimum=0)
CONN_HEALTH_CHECKS = env_bool("CONN_HEALTH_CHECKS", True)
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 2, minimum=1)


def _database(name: str, url: str) -> dict:
    try:
        config = dj_database_url.parse(url, conn_max_age=CONN_MAX_AGE, conn_health_checks=CONN_HEALTH_CHECKS)
    except (ValueError, dj_database_url.ParseError) as exc:
        raise ConfigurationError(name, f"is not a valid database URL ({exc}).") from None
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ConfigurationError(name, f"must be a postgres:// URL, got {url.split(':', 1)[0]!r}.")
    if not config["NAME"]:
        raise ConfigurationError(name, "must name a database (postgres://user@host:port/NAME).")
    options = config.setdefault("OPTIONS", {})
    # A dead host must fail fast so the error page and health checks answer at once.
    options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
    options.setdefault("application_name", "herald")
    return config


DATABASE_URL = env_url(
    "DATABASE_URL",
    "postgres://herald@127.0.0.1:55432/herald",
    schemes=("postgres", "postgresql", "pgsql"),
)
DATABASES = {"default": _database("DATABASE_URL", DATABASE_URL)}

DATABASE_REPLICA_URL = env_url("DATABASE_REPLICA_URL", schemes=("postgres", "postgresql", "pgsql"))
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = _database("DATABASE_REPLICA_URL", DATABASE_REPLICA_URL)
    # Tests see the replica as the primary: replication is the platform's job, not Django's.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
REPLICA_MAX_LAG_SECONDS = env_float("REPLICA_MAX_LAG_SECONDS", 10.0)
# Reads of these apps' models (reports) go to the replica, except for a browser that wrote in the
# last DATABASE_PIN_SECONDS (common/db_routing.py).
DATABASE_ROUTERS = ["common.db_routing.PrimaryReplicaRouter"]
DATABASE_REPLICA_APPS = env_list("DATABASE_REPLICA_APPS", ["analytics"])
DATABASE_PIN_SECONDS = env_float("DATABASE_PIN_SECONDS", 5.0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis: cache, sessions, broker ----------------------------------------------------

REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:56379/0", schemes=("redis", "rediss", "unix"))
REDIS_SENTINELS = env_host_ports("REDIS_SENTINELS", 26379)
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "herald")
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 0.5)

_redis_options = {
    # A Redis outage must cost a request nothing but a cache miss; sessions fall back to Postgres.
    "IGNORE_EXCEPTIONS": True,
    "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
    "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
}
if REDIS_SENTINELS:
    # Sentinel tells each client where the master is now, so a promotion needs no restart.
    _cache_location = f"redis://{REDIS_SENTINEL_MASTER}/0"
    _redis_options |= {
        "CLIENT_CLASS": "django_redis.client.SentinelClient",
        "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
        "SENTINELS": REDIS_SENTINELS,
        "SENTINEL_KWARGS": {"socket_timeout": REDIS_SOCKET_TIMEOUT},
    }
    DJANGO_REDIS_CONNECTION_FACTORY = "django_redis.pool.SentinelConnectionFactory"
else:
    _cache_location = REDIS_URL
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": _cache_location,
        "KEY_PREFIX": "herald",
        "OPTIONS": _redis_options,
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600, minimum=60)

# --- Celery ----------------------------------------------------------------------------

if REDIS_SENTINELS:
    _default_broker = ";".join(f"sentinel://{host}:{port}/1" for host, port in REDIS_SENTINELS)
else:
    _default_broker = REDIS_URL.rsplit("/", 1)[0] + "/1" if REDIS_URL.startswith("redis") else REDIS_URL
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", _default_broker, schemes=("redis", "rediss", "sentinel", "amqp", "amqps")
)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Unacknowledged messages return to the queue after this long; it must exceed the longest task.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    # Look for such messages at every restore tick (10 s), not every tenth: a task whose worker
    # died is back in its queue about visibility_timeout after it was taken, not 100 s later.
    "unacked_restore_throttle": 1,
}
if CELERY_BROKER_URL.startswith("sentinel://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
CELERY_TASK_ALWAYS_EAGER = False

# --- Auth ------------------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The login form's field is "username" even though people type their email into it.
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "accounts.lockout.username_for_lockout"
AXES_LOCKOUT_TEMPLATE = "accounts/lockout.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Behind HAProxy the client's address is the last hop it appended to X-Forwarded-For.
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

# --- JSON API --------------------------------------------------------------------------

# Requests one API key may make per period ("600/m": s, m, h or d).
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/m")
if not re.fullmatch(r"[1-9][0-9]*/(s|m|h|d)", API_RATE_LIMIT):
    raise ConfigurationError(
        "API_RATE_LIMIT", f"must look like '600/m' (a count per s, m, h or d), got {API_RATE_LIMIT!r}."
    )
# The API's own client address rule matches the login lockout's (see TRUSTED_PROXY_COUNT).
NINJA_NUM_PROXIES = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)

# --- Subscribers -----------------------------------------------------------------------

# Public subscribe-form submissions one client address may make per period ("20/h"); counted
# in Redis, and let through while Redis is down.
SUBSCRIBE_RATE_LIMIT = env_str("SUBSCRIBE_RATE_LIMIT", "20/h")
if not re.fullmatch(r"[1-9][0-9]*/(s|m|h|d)", SUBSCRIBE_RATE_LIMIT):
    raise ConfigurationError(
        "SUBSCRIBE_RATE_LIMIT", f"must look like '20/h' (a count per s, m, h or d), got {SUBSCRIBE_RATE_LIMIT!r}."
    )
# Where a web node writes unsubscribes it could store neither in Postgres nor in Redis; the
# beat task `subscribers.apply_queued_unsubscribes` drains it (shared storage, like MEDIA_ROOT).
UNSUBSCRIBE_SPOOL_DIR = Path(env_str("UNSUBSCRIBE_SPOOL_DIR", str(BASE_DIR / "var" / "unsubscribe-spool")))

# --- Static files ----------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
# Subscriber imports (subscribers/imports.py): the largest upload accepted, the processes that
# validate rows (0: one per CPU core), and the sizes of the chunks read and the buckets written
# between checkpoints.
IMPORT_MAX_UPLOAD_MB = env_int("IMPORT_MAX_UPLOAD_MB", 200, minimum=1)
IMPORT_WORKERS = env_int("IMPORT_WORKERS", 0, minimum=0)
IMPORT_CHUNK_BYTES = env_int("IMPORT_CHUNK_BYTES", 1024 * 1024, minimum=1024)
IMPORT_BUCKET_ROWS = env_int("IMPORT_BUCKET_ROWS", 100_000, minimum=100)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Operations ------------------------------------------------------------------------

HEALTH_TOKEN = env_str("HEALTH_TOKEN")
# Bearer token for /metrics (Prometheus); the health token when unset.
METRICS_TOKEN = env_str("METRICS_TOKEN", HEALTH_TOKEN)
# A Celery worker serves its metrics on this port (0: not at all); it needs PROMETHEUS_MULTIPROC_DIR.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0)
WORKER_METRICS_ADDRESS = env_str("WORKER_METRICS_ADDRESS", "127.0.0.1")
# The public address of the site, for links in emails (confirmation, unsubscribe).
SITE_URL = env_url("SITE_URL", "http://localhost:8000", schemes=("http", "https")).rstrip("/")
# Public status page: its title, and how long component states are reused between page views.
STATUS_PAGE_TITLE = env_str("STATUS_PAGE_TITLE", "Herald status")
STATUS_PAGE_CACHE_SECONDS = env_int("STATUS_PAGE_CACHE_SECONDS", 10, minimum=0)
# A file whose presence takes this node out of the load balancer (operators: touch it to drain).
DRAIN_FILE = env_str("DRAIN_FILE")
NODE_NAME = env_str("NODE_NAME", "")

# Backups: pg_dump in custom format into BACKUP_DIR, the newest BACKUP_KEEP kept; a restore
# drill restores the newest into a scratch database (RESTORE_DRILL_DATABASE_URL, or a
# throwaway local Postgres when unset) and checks it.
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(BASE_DIR / "var" / "backups")))
BACKUP_KEEP = env_int("BACKUP_KEEP", 14, minimum=1)
BACKUP_INTERVAL_HOURS = env_float("BACKUP_INTERVAL_HOURS", 24.0)
BACKUP_MAX_AGE_HOURS = env_float("BACKUP_MAX_AGE_HOURS", BACKUP_INTERVAL_HOURS + 2)
RESTORE_DRILL_INTERVAL_HOURS = env_float("RESTORE_DRILL_INTERVAL_HOURS", 24.0 * 7)
RESTORE_DRILL_MAX_AGE_HOURS = env_float("RESTORE_DRILL_MAX_AGE_HOURS", RESTORE_DRILL_INTERVAL_HOURS + 24)
RESTORE_DRILL_DATABASE_URL = env_url("RESTORE_DRILL_DATABASE_URL", schemes=("postgres", "postgresql", "pgsql"))

CELERY_BEAT_SCHEDULE = {
    "operations.backup": {"task": "operations.backup", "schedule": timedelta(hours=BACKUP_INTERVAL_HOURS)},
    "operations.restore_drill": {
        "task": "operations.restore_drill",
        "schedule": timedelta(hours=RESTORE_DRILL_INTERVAL_HOURS),
    },
    "operations.synthetic_check": {"task": "operations.synthetic_check", "schedule": timedelta(seconds=60)},
    # Unsubscribes queued while the database was unreachable are applied within seconds of its return.
    "subscribers.apply_queued_unsubscribes": {
        "task": "subscribers.apply_queued_unsubscribes",
        "schedule": timedelta(seconds=15),
    },
    "subscribers.imports_sweep": {"task": "subscribers.imports_sweep", "schedule": timedelta(seconds=60)},
}

# Synthetic monitoring (operations/synthetic.py): a probe signs in through the public address.
SYNTHETIC_BASE_URL = env_url("SYNTHETIC_BASE_URL", SITE_URL, schemes=("http", "https"))
SYNTHETIC_PROBE_EMAIL = env_str("SYNTHETIC_PROBE_EMAIL", "synthetic-probe@herald.invalid")
SYNTHETIC_PROBE_PASSWORD = env_str("SYNTHETIC_PROBE_PASSWORD", "")
SYNTHETIC_TIMEOUT_SECONDS = env_float("SYNTHETIC_TIMEOUT_SECONDS", 10.0)
SYNTHETIC_RETENTION_DAYS = env_int("SYNTHETIC_RETENTION_DAYS", 35, minimum=1)
# The sending step: a one-recipient campaign through a relay at SYNTHETIC_SMTP_HOST:PORT, looked
# for in the SMTP sink's store SYNTHETIC_SINK_DIR (the step is skipped while that is unset).
SYNTHETIC_SMTP_HOST = env_str("SYNTHETIC_SMTP_HOST", "127.0.0.1")
SYNTHETIC_SMTP_PORT = env_int("SYNTHETIC_SMTP_PORT", 58125, minimum=1)
SYNTHETIC_SINK_DIR = env_str("SYNTHETIC_SINK_DIR", "")
SYNTHETIC_SEND_TIMEOUT_SECONDS = env_float("SYNTHETIC_SEND_TIMEOUT_SECONDS", 30.0)

# Service level objectives, in percent of good events (README: "Service level objectives").
SLO_TARGETS = env_percentages(
    "SLO_TARGETS",
    {"send_success": 99.9, "api_latency": 95.0, "dashboard_availability": 99.95, "import_latency": 99.0},
)
SLO_API_LATENCY_MS = env_int("SLO_API_LATENCY_MS", 300, minimum=1)
SLO_IMPORT_SECONDS_PER_100K_ROWS = env_int("SLO_IMPORT_SECONDS_PER_100K_ROWS", 120, minimum=1)

# Alerting (`manage.py monitor` evaluates the rules in operations/alert_rules.py).
ALERT_EVALUATION_SECONDS = env_float("ALERT_EVALUATION_SECONDS", 15.0)
ALERT_FOR_SECONDS = env_float("ALERT_FOR_SECONDS", 60.0)
ALERT_QUEUE_DEPTH_WARNING = env_int("ALERT_QUEUE_DEPTH_WARNING", 100, minimum=1)
ALERT_QUEUE_DEPTH_CRITICAL = env_int("ALERT_QUEUE_DEPTH_CRITICAL", 1000, minimum=1)
ALERT_WORKER_PING_SECONDS = env_float("ALERT_WORKER_PING_SECONDS", 2.0)
ALERT_REPLICATION_LAG_SECONDS = env_float("ALERT_REPLICATION_LAG_SECONDS", 30.0)
ALERT_ESCALATE_AFTER_MINUTES = env_float("ALERT_ESCALATE_AFTER_MINUTES", 30.0)
ALERT_DELIVERY_TIMEOUT = env_float("ALERT_DELIVERY_TIMEOUT", 5.0)
ALERT_MAX_ATTEMPTS = env_int("ALERT_MAX_ATTEMPTS", 8, minimum=1)
ALERT_RUNBOOK_BASE_URL = env_str("ALERT_RUNBOOK_BASE_URL", "")
ALERT_FROM_EMAIL = env_str("ALERT_FROM_EMAIL", "herald-alerts@localhost")
# Burn rates of an SLO's error budget that alert: over 1 h (critical) and over 24 h (warning),
# counted only once a window holds this many events.
ALERT_SLO_FAST_BURN = env_float("ALERT_SLO_FAST_BURN", 14.4)
ALERT_SLO_SLOW_BURN = env_float("ALERT_SLO_SLOW_BURN", 3.0)
ALERT_SLO_MIN_EVENTS = env_int("ALERT_SLO_MIN_EVENTS", 10, minimum=1)
ALERT_SYNTHETIC_STALE_SECONDS = env_float("ALERT_SYNTHETIC_STALE_SECONDS", 300.0)
# Per campaign now sending, in percent of its deliveries, once it has ALERT_CAMPAIGN_MIN_DELIVERIES.
ALERT_COMPLAINT_RATE_WARNING = env_float("ALERT_COMPLAINT_RATE_WARNING", 0.2)
ALERT_COMPLAINT_RATE_CRITICAL = env_float("ALERT_COMPLAINT_RATE_CRITICAL", 0.3)
ALERT_BOUNCE_RATE_WARNING = env_float("ALERT_BOUNCE_RATE_WARNING", 3.0)
ALERT_BOUNCE_RATE_CRITICAL = env_float("ALERT_BOUNCE_RATE_CRITICAL", 5.0)
ALERT_CAMPAIGN_MIN_DELIVERIES = env_int("ALERT_CAMPAIGN_MIN_DELIVERIES", 1000, minimum=1)
for _name in ("COMPLAINT", "BOUNCE"):
    _warning, _critical = globals()[f"ALERT_{_name}_RATE_WARNING"], globals()[f"ALERT_{_name}_RATE_CRITICAL"]
    if not 0 < _warning <= _critical < 100:
        raise ConfigurationError(
            f"ALERT_{_name}_RATE_WARNING",
            f"and ALERT_{_name}_RATE_CRITICAL are percentages with 0 < warning <= critical < 100, "
            f"got {_warning} and {_critical}.",
        )
del _name, _warning, _critical

# Outgoing mail from the platform itself (confirmations, alerts, status updates). Campaigns
# go through the workspace's SMTP relays instead. The default reaches the local SMTP sink
# that `make run` starts (common/smtp_sink.py).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 58125, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ConfigurationError("EMAIL_USE_SSL", "cannot be on together with EMAIL_USE_TLS; choose one.")
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Herald <herald@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Campaign sending (campaigns/sending.py). Relay passwords and DKIM keys are encrypted at rest
# with RELAY_CREDENTIALS_KEY (derived from SECRET_KEY when unset; changing either makes stored
# secrets unreadable).
RELAY_CREDENTIALS_KEY = env_str("RELAY_CREDENTIALS_KEY", "")
SEND_BATCH_SIZE = env_int("SEND_BATCH_SIZE", 200, minimum=1)
SEND_TASKS_PER_CAMPAIGN = env_int("SEND_TASKS_PER_CAMPAIGN", 4, minimum=1)
SEND_LEASE_SECONDS = env_int("SEND_LEASE_SECONDS", 60, minimum=10)
SEND_MAX_ATTEMPTS = env_int("SEND_MAX_ATTEMPTS", 8, minimum=1)
SEND_RETRY_BASE_SECONDS = env_float("SEND_RETRY_BASE_SECONDS", 60.0)
RELAY_CIRCUIT_FAILURES = env_int("RELAY_CIRCUIT_FAILURES", 3, minimum=1)
RELAY_CIRCUIT_OPEN_SECONDS = env_float("RELAY_CIRCUIT_OPEN_SECONDS", 30.0)
CELERY_BEAT_SCHEDULE["campaigns.start_due"] = {"task": "campaigns.start_due", "schedule": timedelta(seconds=10)}
CELERY_BEAT_SCHEDULE["campaigns.sweep"] = {"task": "campaigns.sweep", "schedule": timedelta(seconds=15)}
CELERY_BEAT_SCHEDULE["campaigns.transactional_retry"] = {
    "task": "campaigns.transactional_retry",
    "schedule": timedelta(seconds=15),
}

# Bounce and complaint intake (campaigns/bounces.py). ESP webhooks (anymail) stay refused until
# ANYMAIL_WEBHOOK_SECRET ("user:password" basic auth) is set; Mailgun also needs its signing key.
# BOUNCE_MAILBOX_DIR is a mailbox directory (common/smtp_sink.py layout) where DSNs, complaints
# and mailto unsubscribe requests arrive (campaigns/mailbox.py).
ANYMAIL = {
    "WEBHOOK_SECRET": env_str("ANYMAIL_WEBHOOK_SECRET", ""),
    "MAILGUN_WEBHOOK_SIGNING_KEY": env_str("ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY", ""),
}
BOUNCE_MAILBOX_DIR = env_str("BOUNCE_MAILBOX_DIR", "")
# Campaign messages name mailto:unsubscribe@<this domain> in List-Unsubscribe; empty: the sender's
# own domain. Mail to that address must reach BOUNCE_MAILBOX_DIR, where it is read as an unsubscribe.
LIST_UNSUBSCRIBE_MAILTO_DOMAIN = env_str("LIST_UNSUBSCRIBE_MAILTO_DOMAIN", "").strip().lower()
CELERY_IMPORTS = ("campaigns.bounce_tasks",)
CELERY_BEAT_SCHEDULE["campaigns.bounce_mailbox"] = {
    "task": "campaigns.bounce_mailbox",
    "schedule": timedelta(seconds=30),
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ConfigurationError("LOG_LEVEL", f"must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {LOG_LEVEL!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Ignored Redis errors are logged by django-redis at ERROR; they are expected while
        # Redis fails over and must not flood the log at that level.
        "django_redis.cache": {"level": "WARNING"},
    },
}

SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
        send_default_pii=False,
    )

# Analytics (analytics/): tracking events wait in a Redis stream (or, with Redis and Postgres
# both down, in a spool file under ANALYTICS_SPOOL_DIR) until the drain moves them to Postgres.
ANALYTICS_DRAIN_SECONDS = env_float("ANALYTICS_DRAIN_SECONDS", 3.0)
ANALYTICS_DRAIN_BATCH = env_int("ANALYTICS_DRAIN_BATCH", 2000, minimum=1)
ANALYTICS_SPOOL_DIR = Path(env_str("ANALYTICS_SPOOL_DIR", str(BASE_DIR / "var" / "analytics-spool")))
ANALYTICS_SPOOL_RETRY_SECONDS = env_float("ANALYTICS_SPOOL_RETRY_SECONDS", 5.0)
ANALYTICS_SCANNER_SECONDS = env_float("ANALYTICS_SCANNER_SECONDS", 2.0)
ANALYTICS_LEDGER_SETTLE_SECONDS = env_float("ANALYTICS_LEDGER_SETTLE_SECONDS", 10.0)
ANALYTICS_REPORT_CACHE_SECONDS = env_int("ANALYTICS_REPORT_CACHE_SECONDS", 30, minimum=0)
CELERY_BEAT_SCHEDULE["analytics.drain"] = {"task": "analytics.drain", "schedule": ANALYTICS_DRAIN_SECONDS}
CELERY_BEAT_SCHEDULE["analytics.sync_ledger"] = {"task": "analytics.sync_ledger", "schedule": timedelta(seconds=10)}
CELERY_BEAT_SCHEDULE["analytics.audience_stats"] = {
    "task": "analytics.audience_stats",
    "schedule": timedelta(minutes=5),
}
